// The Kubernetes cluster tests run against: the single-node cluster
// scripts/kubernetes/start-cluster.sh starts (.ci/run starts it and exports
// KUBECONFIG), with the project's images imported into its runtime. Where
// none answers, the Kubernetes suites skip with the reason; under CI=true
// they fail instead.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where scripts/kubernetes/build-tools.sh leaves kubectl and helm. */
export function kubernetesToolsDir(): string {
  return process.env.OUTPOST_K8S_TOOLS ?? path.join(os.homedir(), '.cache', 'outpost', 'kubernetes-v1.33.13');
}

/** The agent image the cluster has, tagged with the package's version. */
export const clusterAgentImage = `outpost/agent:${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}`;

let checked: string | undefined | null = null;

/** Why no cluster can be used here, or undefined when one answers at KUBECONFIG. */
export function kubernetesUnavailable(): string | undefined {
  if (checked !== null) return checked;
  const kubectl = path.join(kubernetesToolsDir(), 'kubectl');
  const kubeconfig = process.env.KUBECONFIG;
  let reason: string | undefined;
  if (!kubeconfig || !existsSync(kubeconfig)) reason = 'no Kubernetes cluster: KUBECONFIG is not set (start one with scripts/kubernetes/start-cluster.sh)';
  else if (!existsSync(kubectl)) reason = `no kubectl at ${kubectl} (scripts/kubernetes/build-tools.sh builds it)`;
  else {
    try {
      execFileSync(kubectl, ['get', '--raw', '/readyz'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      reason = `the cluster at KUBECONFIG=${kubeconfig} does not answer`;
    }
  }
  if (reason !== undefined && process.env.CI === 'true') throw new Error(`CI must test against Kubernetes, but ${reason}`);
  checked = reason;
  return reason;
}

/** kubectl against the test cluster; its stdout. */
export function kubectl(args: readonly string[], timeoutMs = 60_000): string {
  return execFileSync(path.join(kubernetesToolsDir(), 'kubectl'), [...args], { encoding: 'utf8', timeout: timeoutMs });
}
