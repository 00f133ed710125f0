// Wires the kubernetes driver and the part the agent plays
// (OUTPOST_AGENT_KUBERNETES_MODE) from the agent's settings. Loaded only
// when OUTPOST_AGENT_DRIVER=kubernetes: no other agent loads the
// Kubernetes client.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadYaml, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AgentRole } from '../agent-deps.ts';
import type { AgentConfig } from '../config.ts';
import { KubeApi, loadKubeConfig } from '../drivers/kubernetes/kube-api.ts';
import { KubernetesDriver } from '../drivers/kubernetes/kubernetes-driver.ts';
import { PodWaiter } from '../drivers/kubernetes/pod-waiter.ts';
import { defaultNamespace } from '../kubernetes-config.ts';
import { ControllerRole } from './controller-role.ts';
import { WorkerRole } from './worker-role.ts';

/** The kubernetes driver cannot work here; the message says what to fix. */
export class KubernetesUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubernetesUnavailableError';
  }
}

export async function kubernetesAgentParts(config: AgentConfig, cacheDir: string, logger: Logger): Promise<{ driver: KubernetesDriver; role: AgentRole }> {
  let api: KubeApi;
  try {
    api = new KubeApi(loadKubeConfig(), defaultNamespace(config.kubernetesNamespace));
  } catch (error) {
    throw new KubernetesUnavailableError(`OUTPOST_AGENT_DRIVER=kubernetes, but no Kubernetes configuration was found (${(error as Error).message}): run the agent in a pod with a service account, or set KUBECONFIG.`);
  }
  const template = await podTemplate(config.kubernetesPodTemplate);
  const mode = config.kubernetesMode!;
  const shared = {
    api,
    instance: config.kubernetesInstance,
    dataDir: config.dataDir,
    template,
    defaultImage: config.containerTaskImage,
    jobUser: config.containerTaskUser,
    startupTimeoutMs: config.kubernetesStartupTimeout,
    podTtlMs: config.kubernetesPodTtl,
    logger,
  };
  const driver =
    mode === 'worker'
      ? new KubernetesDriver({ ...shared, mode: 'worker', nodePaths: [config.dataDir, cacheDir], nodeName: config.kubernetesNodeName })
      : new KubernetesDriver({ ...shared, mode: 'controller', nodePaths: [] });
  const health = await driver.fingerprint();
  if (!health.healthy) throw new KubernetesUnavailableError(`OUTPOST_AGENT_DRIVER=kubernetes, but the Kubernetes API does not answer: ${health.detail}`);
  logger.info({ driver: 'kubernetes', mode, namespace: api.namespace, instance: config.kubernetesInstance, detail: health.detail }, 'driver selected');
  if (mode === 'worker') {
    // The shared directories job pods mount must exist, the worker's, before any pod starts.
    for (const dir of [path.join(config.dataDir, 'runtime'), path.join(config.dataDir, 'jobs'), cacheDir]) await mkdir(dir, { recursive: true, mode: 0o755 });
    return { driver, role: new WorkerRole({ api, dataDir: config.dataDir, jobUser: config.containerTaskUser, instance: config.kubernetesInstance, nodeName: config.kubernetesNodeName!, onCordon: config.onStopAction, logger }) };
  }
  return {
    driver,
    role: new ControllerRole({
      api,
      waiter: new PodWaiter(api, { instance: config.kubernetesInstance }),
      template,
      instance: config.kubernetesInstance,
      controllerName: config.name,
      nodeDataDir: config.kubernetesNodeDataDir,
      nodeCacheDir: config.kubernetesNodeCacheDir,
      defaultImage: config.containerTaskImage,
      jobUser: config.containerTaskUser,
      schedulingTimeoutMs: config.kubernetesSchedulingTimeout,
      serverUrl: config.url,
      maxArchiveMb: config.maxArchiveMb,
      logger,
    }),
  };
}

/** The job pods' template: a Pod manifest (the chart's), or one `job` container when none is given. */
async function podTemplate(file: string | undefined): Promise<V1Pod> {
  if (file === undefined) return { spec: { containers: [] } };
  let parsed: unknown;
  try {
    parsed = loadYaml<unknown>(await readFile(file, 'utf8'));
  } catch (error) {
    throw new KubernetesUnavailableError(`OUTPOST_AGENT_KUBERNETES_POD_TEMPLATE=${file} cannot be read as YAML: ${(error as Error).message}`);
  }
  const pod = parsed as V1Pod | undefined;
  if (typeof pod !== 'object' || pod === null || (pod.kind !== undefined && pod.kind !== 'Pod') || (pod.spec !== undefined && !Array.isArray(pod.spec.containers ?? []))) {
    throw new KubernetesUnavailableError(`OUTPOST_AGENT_KUBERNETES_POD_TEMPLATE=${file} is not a Pod manifest (kind: Pod, spec.containers: […])`);
  }
  pod.spec ??= { containers: [] };
  pod.spec.containers ??= [];
  return pod;
}
