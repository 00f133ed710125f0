// Where tests find helm and kubectl, and the test cluster.
//
// scripts/kubernetes/build-tools.sh builds them into $OUTPOST_K8S_TOOLS, by
// default ~/.cache/outpost/kubernetes-v1.33.13; scripts/kubernetes/start-cluster.sh
// starts a single-node cluster and prints the KUBECONFIG to export for it
// (the harness exports it).
//
// A suite that needs one of them skips with the reason on a developer
// machine and fails under CI=true: CI provides both.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const kubernetesVersion = '1.33.13';

export interface KubernetesTools {
  readonly dir: string;
  readonly helm: string;
  readonly kubectl: string;
}

/** The directories searched for the tools, in order. */
export function kubernetesToolDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [path.join(os.homedir(), '.cache', 'outpost', `kubernetes-v${kubernetesVersion}`)];
  if (env.OUTPOST_K8S_TOOLS) dirs.unshift(env.OUTPOST_K8S_TOOLS);
  return dirs;
}

/**
 * The first directory that has helm, with the paths of helm and kubectl in
 * it (kubectl may be missing: only the cluster's suites need it), or why
 * there is none.
 */
export function findKubernetesTools(env: NodeJS.ProcessEnv = process.env): KubernetesTools | { readonly missing: string } {
  const dirs = kubernetesToolDirs(env);
  for (const dir of dirs) {
    const helm = path.join(dir, 'helm');
    if (existsSync(helm)) return { dir, helm, kubectl: path.join(dir, 'kubectl') };
  }
  return { missing: `helm is not in ${dirs.join(' or ')} (scripts/kubernetes/build-tools.sh builds it)` };
}

/** The reason a suite cannot run, or undefined; under CI=true the reason is thrown instead. */
function skipOrThrow(reason: string | undefined, what: string, env: NodeJS.ProcessEnv): string | undefined {
  if (reason === undefined) return undefined;
  if (env.CI === 'true') throw new Error(`CI must ${what}, but ${reason}`);
  return reason;
}

/**
 * For a suite that needs helm: the tools, or the reason to skip.
 *
 *   const { tools, skip } = kubernetesToolsForTests('render the Helm charts');
 *   test('…', { skip }, () => { run(tools!.helm, …) });
 */
export function kubernetesToolsForTests(what: string, env: NodeJS.ProcessEnv = process.env): { tools?: KubernetesTools; skip: string | false } {
  const found = findKubernetesTools(env);
  if ('missing' in found) return { skip: skipOrThrow(found.missing, what, env) ?? false };
  return { tools: found, skip: false };
}

/**
 * For a suite that needs the test cluster: the tools and the kubeconfig, or
 * the reason to skip.
 */
export function kubernetesClusterForTests(
  what: string,
  env: NodeJS.ProcessEnv = process.env,
): { tools?: KubernetesTools; kubeconfig?: string; skip: string | false } {
  const found = findKubernetesTools(env);
  if ('missing' in found) return { skip: skipOrThrow(found.missing, what, env) ?? false };
  const kubeconfig = env.KUBECONFIG;
  let reason: string | undefined;
  if (!existsSync(found.kubectl)) reason = `kubectl is not in ${found.dir} (scripts/kubernetes/build-tools.sh builds it)`;
  else if (!kubeconfig) reason = 'KUBECONFIG is not set (bash scripts/kubernetes/start-cluster.sh starts a test cluster and prints it)';
  else if (!existsSync(kubeconfig)) reason = `KUBECONFIG names ${kubeconfig}, which does not exist`;
  else {
    try {
      execFileSync(found.kubectl, ['get', '--raw', '/readyz'], { stdio: 'ignore', timeout: 10_000, env: { ...env, KUBECONFIG: kubeconfig } });
    } catch {
      reason = `the cluster at KUBECONFIG=${kubeconfig} does not answer`;
    }
  }
  if (reason !== undefined) return { skip: skipOrThrow(reason, what, env) ?? false };
  return { tools: found, kubeconfig, skip: false };
}
