// agent-local installed with Helm on the test cluster, running real plans
// against a real server (reachable from the pods at the node's address):
// both replicas register under their pod names, a run is planned and
// applied, a cancel reaches OpenTofu in the agent's container, the agent
// pod killed mid-plan loses its job and the plan finishes on another agent,
// a changed token Secret rolls the agents on `helm upgrade` (the old token
// is then revoked and runs still apply), and `helm uninstall` leaves no
// pod, object or agent.
//
// OpenTofu reaches the agents as an engine file on the node (a hostPath
// volume and OUTPOST_AGENT_ENGINE_PATH): no release site is reachable here.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { createPool, createRun, createWorkspace, readLog, relatedId, runAction, uploadConfiguration, type Pool, type Workspace } from '../support/api-calls.ts';
import type { ServerHandle } from '../support/cluster.ts';
import { startServerReachableAt } from '../support/container-reachable-server.ts';
import { onlineAgentNames, rotatePoolToken, startHeldPlan, uninstallLeavesNothing } from '../support/chart-runs.ts';
import { ClusterTools, waitForCluster } from '../support/helm-release.ts';
import { quickConfig, tofuInterruptMessage, waitForLog } from '../support/job-control.ts';
import { clusterAgentImage } from '../support/kubernetes-cluster.ts';
import { nodeAddress } from '../support/kubernetes-agents.ts';
import { kubernetesClusterForTests } from '../support/kubernetes-tools.ts';
import { suiteHooks } from '../support/test-cluster.ts';
import { tofuBinary } from '../support/toolchain.ts';
import { waitForRunStatus, waitUntil } from '../support/waits.ts';

const { tools, kubeconfig, skip } = kubernetesClusterForTests('run plans through the agent-local chart on the test cluster');
const suffix = randomBytes(3).toString('hex');
const namespace = `outpost-local-runs-${suffix}`;
const release = 'local-runs';
const engineInPod = '/opt/outpost-engine/tofu';
const selector = `app.kubernetes.io/instance=${release}`;

describe('agent-local installed with Helm runs real plans', { skip, timeout: 900_000 }, () => {
  const hooks = suiteHooks();
  let k: ClusterTools;
  let server: ServerHandle;
  let pool: Pool;
  let workspace: Workspace;
  let nodeIp: string;
  const describeAll = async () => `${await k.kubectl(['get', 'pods', '-n', namespace, '-o', 'wide'])}\n${await k.kubectl(['logs', '-n', namespace, '-l', selector, '--tail', '30', '--prefix'])}`;
  const waitForRun = (runId: string, statuses: Parameters<typeof waitForRunStatus>[2]) => waitForRunStatus(server, runId, statuses, 180_000);
  const onlineAgents = () => onlineAgentNames(server, pool.id);
  const setTokenSecret = async (token: string) => {
    const manifest = await k.kubectl(['create', 'secret', 'generic', 'pool-token', '-n', namespace, `--from-literal=token=${token}`, '--dry-run=client', '-o', 'yaml']);
    await k.kubectl(['apply', '-n', namespace, '-f', '-'], manifest);
  };
  const agentsReady = (exclude: ReadonlySet<string> = new Set()) => async () => {
    const pods = await k.pods(namespace, selector);
    return pods.length === 2 && pods.every((pod) => !exclude.has(pod.metadata.name) && pod.status.containerStatuses?.[0]?.ready === true) ? pods : undefined;
  };

  before(async () => {
    k = new ClusterTools(tools!, kubeconfig);
    nodeIp = nodeAddress().ip;
    let podUrl: string;
    ({ server, containerUrl: podUrl } = await startServerReachableAt(hooks, nodeIp));
    pool = await createPool(server);
    workspace = await createWorkspace(server, { poolId: pool.id, autoApply: true });
    // hostPath volumes (the engine) are not allowed under the baseline or restricted standards.
    await k.createNamespace(hooks, namespace, 'privileged');
    await setTokenSecret(pool.token);
    await k.install(hooks, 'agent-local', release, namespace, {
      image: { tag: clusterAgentImage.split(':')[1], pullPolicy: 'Never' },
      agent: { url: podUrl, tokenExistingSecret: { name: 'pool-token' }, logLevel: 'debug', extraEnv: [{ name: 'OUTPOST_AGENT_ENGINE_PATH', value: engineInPod }] },
      replicaCount: 2,
      // Nothing runs while the tests roll or remove the agents: no need to wait long.
      shutdownMode: 'grace',
      terminationGracePeriodSeconds: 30,
      resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '1Gi' } },
      extraVolumes: [{ name: 'engine', hostPath: { path: tofuBinary(), type: 'File' } }],
      extraVolumeMounts: [{ name: 'engine', mountPath: engineInPod, readOnly: true }],
    });
    await waitForCluster('both agents ready (registered)', 180_000, agentsReady(), describeAll);
  });

  test('the pool lists both agents, named after their pods', async () => {
    const pods = (await k.pods(namespace, selector)).map((pod) => pod.metadata.name);
    await waitUntil('both agents online', async () => ((await onlineAgents()).length === 2 ? true : undefined), describeAll);
    assert.deepEqual((await onlineAgents()).sort(), pods.sort());
  });

  test('a run is planned and applied by the agents, on the local driver', async () => {
    const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('helm-local')));
    const applied = await waitForRun(run.id, ['applied']);
    const planLog = await readLog(server, relatedId(applied, 'plan'));
    assert.match(planLog, /Outpost agent local-runs-agent-local-\S+: plan job \S+, driver local/, planLog);
    assert.match(await readLog(server, relatedId(applied, 'apply')), /Apply complete! Resources: 1 added/);
  });

  test('a cancel reaches OpenTofu in the agent\'s container', async (t) => {
    const { endpoint, run } = await startHeldPlan(t, server, workspace, nodeIp, describeAll);
    await runAction(server, run.id, 'cancel');
    await waitForLog(server, relatedId(run, 'plan'), tofuInterruptMessage, describeAll);
    endpoint.release();
    await waitForRun(run.id, ['canceled']);
  });

  test('the agent pod killed mid-plan: the plan is queued again and finishes on another agent', async (t) => {
    const { endpoint, run } = await startHeldPlan(t, server, workspace, nodeIp, describeAll, { autoApply: false });
    const firstLog = await readLog(server, relatedId(run, 'plan'));
    const first = /Outpost agent (\S+): plan job/.exec(firstLog)?.[1];
    assert.ok(first, firstLog);
    await k.kubectl(['delete', 'pod', '-n', namespace, first, '--grace-period=0', '--force']);
    // The agent is gone (the kubelet kills it at once, or it hands the job
    // back; otherwise its lease lapses): the plan is queued again, and
    // another agent reads the held state.
    const readsBefore = endpoint.requests.length;
    await waitUntil('another agent\'s plan to read the held state', async () => (endpoint.requests.length > readsBefore ? true : undefined), describeAll, 180_000);
    endpoint.release();
    const planned = await waitForRun(run.id, ['planned']);
    const planLog = await readLog(server, relatedId(planned, 'plan'));
    const agents = [...planLog.matchAll(/Outpost agent (\S+): plan job/g)].map((match) => match[1]);
    assert.equal(agents.length, 2, planLog);
    assert.equal(agents[0], first);
    assert.notEqual(agents[1], first, planLog);
    assert.equal(planLog.match(/^Plan: 1 to add/gm)?.length, 1, planLog);
    await runAction(server, run.id, 'discard');
  });

  test('a changed token Secret rolls the agents on helm upgrade; the old token can then be revoked', async () => {
    await waitForCluster('both agents ready', 180_000, agentsReady(), describeAll);
    const rotation = await rotatePoolToken(server, pool);
    const before = new Set((await k.pods(namespace, selector)).map((pod) => pod.metadata.name));
    await setTokenSecret(rotation.token);
    await k.helm(['upgrade', release, `${import.meta.dirname}/../../deploy/helm/agent-local`, '--namespace', namespace, '--reuse-values', '--wait', '--timeout', '300s']);
    await waitForCluster('every agent pod replaced and ready', 300_000, agentsReady(before), describeAll);
    await rotation.revokeOld();
    const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('rotated')));
    await waitForRun(run.id, ['applied']);
  });

  test('helm uninstall: the agents leave the pool; no pod or object of the release is left', async () => {
    await uninstallLeavesNothing(k, server, pool, namespace, release, describeAll);
  });
});
