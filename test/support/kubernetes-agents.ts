// The agent-k8s model with real processes on the test cluster's node: the
// server (reachable from pods at the node's address), a Kubernetes
// controller and a worker as agent processes on this host, which is the
// cluster's only node, so the worker's data and cache dirs are the node's
// directories the job pods mount. The Helm charts run the same agents in
// pods (test/kubernetes/chart-k8s-runs.test.ts).
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentHandle, ServerHandle, TestHooks } from './cluster.ts';
import { startAgent } from './cluster.ts';
import { createPool, createWorkspace, type Pool, type Workspace } from './api-calls.ts';
import { startServerReachableAt } from './container-reachable-server.ts';
import { tempDir } from './files.ts';
import { clusterAgentImage, kubectl } from './kubernetes-cluster.ts';
import { waitForRunStatus } from './waits.ts';
import type { Run, RunStatus } from './api-calls.ts';

export interface KubernetesSetup {
  server: ServerHandle;
  /** The server's URL as pods reach it. */
  podUrl: string;
  pool: Pool;
  workspace: Workspace;
  instance: string;
  nodeName: string;
  nodeIp: string;
  nodeDataDir: string;
  nodeCacheDir: string;
  startController(env?: Readonly<Record<string, string>>, name?: string): Promise<AgentHandle>;
  startWorker(env?: Readonly<Record<string, string>>): Promise<AgentHandle>;
  waitForRun(runId: string, statuses: readonly RunStatus[], timeoutMs?: number): Promise<Run>;
  /** The job pods of this setup's instance. */
  jobPods(): { name: string; phase: string; labels: Record<string, string> }[];
}

export function nodeAddress(): { name: string; ip: string } {
  const name = kubectl(['get', 'nodes', '-o', 'jsonpath={.items[0].metadata.name}']).trim();
  const ip = kubectl(['get', 'node', name, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}']).trim();
  return { name, ip };
}

export async function setupKubernetesAgents(t: TestHooks, options: { serverEnv?: Readonly<Record<string, string>>; podTemplate?: string } = {}): Promise<KubernetesSetup> {
  const node = nodeAddress();
  const { server, containerUrl: podUrl } = await startServerReachableAt(t, node.ip, options.serverEnv);
  const pool = await createPool(server);
  const workspace = await createWorkspace(server, { poolId: pool.id, autoApply: true });
  const dir = await tempDir(t, 'outpost-k8s-agents-');
  await chmod(dir, 0o755);
  const nodeDataDir = path.join(dir, 'node-data');
  const nodeCacheDir = path.join(dir, 'node-cache');
  for (const created of [nodeDataDir, nodeCacheDir]) await mkdir(created, { recursive: true, mode: 0o755 });
  const instance = `t-${randomBytes(4).toString('hex')}`;
  let templateFile: string | undefined;
  if (options.podTemplate !== undefined) {
    templateFile = path.join(dir, 'pod-template.yaml');
    await writeFile(templateFile, options.podTemplate);
  }
  t.after(() => {
    try {
      kubectl(['delete', 'pods,secrets', '-l', `outpost.dev/instance=${instance}`, '--grace-period=0', '--force', '--wait=false'], 30_000);
    } catch {
      // Nothing left to delete.
    }
  });
  const common = {
    OUTPOST_AGENT_DRIVER: 'kubernetes',
    OUTPOST_AGENT_ENGINE_BUILD: 'off',
    OUTPOST_AGENT_KUBERNETES_INSTANCE: instance,
    OUTPOST_AGENT_KUBERNETES_NAMESPACE: 'default',
    OUTPOST_AGENT_KUBERNETES_POD_TTL: '0',
    OUTPOST_AGENT_CONTAINER_TASK_IMAGE: clusterAgentImage,
    OUTPOST_AGENT_CONTAINER_TASK_USER: '1000:1000',
    OUTPOST_AGENT_LOG_LEVEL: 'debug',
  };
  const agents: AgentHandle[] = [];
  return {
    server,
    podUrl,
    pool,
    workspace,
    instance,
    nodeName: node.name,
    nodeIp: node.ip,
    nodeDataDir,
    nodeCacheDir,
    async startController(env = {}, name) {
      const agent = await startAgent(
        { url: podUrl },
        {
          token: pool.token,
          t,
          ...(name ? { name } : {}),
          env: {
            ...common,
            OUTPOST_AGENT_KUBERNETES_MODE: 'controller',
            OUTPOST_AGENT_KUBERNETES_NODE_DATA_DIR: nodeDataDir,
            OUTPOST_AGENT_KUBERNETES_NODE_CACHE_DIR: nodeCacheDir,
            OUTPOST_AGENT_CONCURRENCY: '4',
            ...(templateFile ? { OUTPOST_AGENT_KUBERNETES_POD_TEMPLATE: templateFile } : {}),
            ...env,
          },
        },
      );
      agents.push(agent);
      return agent;
    },
    async startWorker(env = {}) {
      const agent = await startAgent(
        { url: podUrl },
        {
          token: pool.token,
          t,
          env: {
            ...common,
            OUTPOST_AGENT_KUBERNETES_MODE: 'worker',
            OUTPOST_AGENT_KUBERNETES_NODE_NAME: node.name,
            OUTPOST_AGENT_DATA_DIR: nodeDataDir,
            OUTPOST_AGENT_CACHE_DIR: nodeCacheDir,
            OUTPOST_AGENT_KUBERNETES_NODE_DATA_DIR: nodeDataDir,
            OUTPOST_AGENT_KUBERNETES_NODE_CACHE_DIR: nodeCacheDir,
            // The job pods cannot reach a provider mirror on this host's loopback.
            OUTPOST_AGENT_PROVIDER_CACHE_ENABLED: 'false',
            ...env,
          },
        },
      );
      agents.push(agent);
      return agent;
    },
    waitForRun: (runId, statuses, timeoutMs = 120_000) => waitForRunStatus(server, runId, statuses, timeoutMs, agents),
    jobPods() {
      const listed = JSON.parse(kubectl(['get', 'pods', '-l', `outpost.dev/instance=${instance}`, '-o', 'json'])) as {
        items: { metadata: { name: string; labels: Record<string, string> }; status: { phase: string } }[];
      };
      return listed.items.map((pod) => ({ name: pod.metadata.name, phase: pod.status.phase, labels: pod.metadata.labels }));
    },
  };
}
