// Installing the Helm charts of deploy/helm on the test cluster, and reading
// what they made: helm and kubectl as child processes (their exit status and
// stderr in every failure), namespaces removed after the test, and what a
// release leaves behind after `helm uninstall`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dump } from 'js-yaml';
import type { TestHooks } from './cluster.ts';
import type { KubernetesTools } from './kubernetes-tools.ts';

export const chartsDir = path.resolve(import.meta.dirname, '..', '..', 'deploy', 'helm');

export interface ToolOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

function toolEnv(kubeconfig: string | undefined): NodeJS.ProcessEnv {
  // Helm's own cache and config stay out of the user's home.
  return { ...process.env, KUBECONFIG: kubeconfig, HELM_CACHE_HOME: '/tmp/outpost-helm-cache', HELM_CONFIG_HOME: '/tmp/outpost-helm-config' };
}

export function runTool(command: string, args: readonly string[], kubeconfig: string | undefined, input?: string): Promise<ToolOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: toolEnv(kubeconfig), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

export interface PodStatus {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { nodeName?: string };
  status: {
    phase: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount: number; started?: boolean; state: Record<string, unknown> }[];
    initContainerStatuses?: { name: string; state: { terminated?: { exitCode: number; reason?: string } } }[];
  };
}

/** helm and kubectl against one cluster; each call fails the test with the tool's stderr when it exits non-zero. */
export class ClusterTools {
  readonly tools: KubernetesTools;
  readonly kubeconfig: string | undefined;

  constructor(tools: KubernetesTools, kubeconfig: string | undefined) {
    this.tools = tools;
    this.kubeconfig = kubeconfig;
  }

  run(tool: 'helm' | 'kubectl', args: readonly string[], input?: string): Promise<ToolOutcome> {
    return runTool(this.tools[tool], args, this.kubeconfig, input);
  }

  async helm(args: readonly string[]): Promise<string> {
    const outcome = await this.run('helm', args);
    assert.equal(outcome.code, 0, `helm ${args.join(' ')}:\n${outcome.stderr}`);
    return outcome.stdout;
  }

  async kubectl(args: readonly string[], input?: string): Promise<string> {
    const outcome = await this.run('kubectl', args, input);
    assert.equal(outcome.code, 0, `kubectl ${args.join(' ')}:\n${outcome.stderr}`);
    return outcome.stdout;
  }

  /** The pods of the namespace that match the label selector (every pod without one). */
  async pods(namespace: string, selector?: string): Promise<PodStatus[]> {
    const args = ['get', 'pods', '-n', namespace, ...(selector ? ['-l', selector] : []), '-o', 'json'];
    return (JSON.parse(await this.kubectl(args)) as { items: PodStatus[] }).items;
  }

  /** A namespace with the Pod Security Standard enforced, deleted (without waiting) after the test. */
  async createNamespace(t: TestHooks, name: string, podSecurity: 'restricted' | 'baseline' | 'privileged'): Promise<void> {
    await this.kubectl(['create', 'namespace', name]);
    t.after(() => this.run('kubectl', ['delete', 'namespace', name, '--wait=false', '--ignore-not-found']));
    await this.kubectl(['label', 'namespace', name, `pod-security.kubernetes.io/enforce=${podSecurity}`]);
  }

  /** `helm install` of a chart of deploy/helm with these values (written to a file, as a user would). */
  async install(t: TestHooks, chart: string, release: string, namespace: string, values: Record<string, unknown>, extraArgs: readonly string[] = []): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-helm-values-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'values.yaml');
    await writeFile(file, dump(values));
    t.after(() => this.run('helm', ['uninstall', release, '--namespace', namespace, '--wait=false']));
    await this.helm(['install', release, path.join(chartsDir, chart), '--namespace', namespace, '--values', file, ...extraArgs]);
    return file;
  }

  /** What remains of a release: every listed kind with its instance label, in its namespace and cluster-wide. */
  async leftovers(namespace: string, release: string): Promise<string> {
    const kinds = 'all,configmaps,secrets,serviceaccounts,networkpolicies,poddisruptionbudgets,persistentvolumeclaims,horizontalpodautoscalers,roles,rolebindings';
    const namespaced = await this.kubectl(['get', kinds, '-n', namespace, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']);
    const clusterWide = await this.kubectl(['get', 'clusterroles,clusterrolebindings', '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']);
    return `${namespaced}${clusterWide}`.trim();
  }
}

/** Polls every second until `check` returns a value (not undefined), or fails with what `describeLast` says. */
export async function waitForCluster<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, describeLast: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}:\n${await describeLast()}`);
    await sleep(1000);
  }
}
