// The agent's Kubernetes settings (OUTPOST_AGENT_DRIVER=kubernetes), part of
// the agent's settings table (config.ts): which part of the agent-k8s chart
// this agent is (docs/kubernetes.md, "How agent-k8s runs a job"), where its
// job pods go and what they look like, and how long they may take.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { asDurationMs, asEnum, asString } from '../config/settings.ts';

/** The namespace of the pod this agent runs in, when it runs in one. */
function ownNamespace(): string {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

function asLabelValue(raw: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/.test(raw)) throw new Error('expected a Kubernetes label value: up to 63 letters, digits, -, _ and ., starting and ending with a letter or digit');
  return raw;
}

export const kubernetesSettings = {
  kubernetesMode: {
    env: ['OUTPOST_AGENT_KUBERNETES_MODE'],
    description: 'With the kubernetes driver, the part this agent plays. `controller`: claims jobs and creates one pod per job (from the pod template), which the scheduler places on a node. `worker` (one per node, a DaemonSet): takes over the job pods placed on its node, prepares the engine in the node\'s cache, starts and follows them, and reports their result. Required with OUTPOST_AGENT_DRIVER=kubernetes.',
    parse: asEnum(['controller', 'worker'] as const),
  },
  kubernetesNamespace: {
    env: ['OUTPOST_AGENT_KUBERNETES_NAMESPACE'],
    description: 'Namespace of the job pods. Default: the namespace the agent\'s own pod runs in (else `default`).',
    parse: asString,
  },
  kubernetesInstance: {
    env: ['OUTPOST_AGENT_KUBERNETES_INSTANCE'],
    default: 'outpost',
    description: 'Names one deployment (the Helm release) in the label `outpost.dev/instance` of its job pods: its controller and workers touch only pods of their own instance.',
    parse: asLabelValue,
  },
  kubernetesPodTemplate: {
    env: ['OUTPOST_AGENT_KUBERNETES_POD_TEMPLATE'],
    description: 'A YAML file with the Pod the job pods start from (the agent-k8s chart renders it): labels, annotations, placement, security contexts, resources, sidecars, volumes. Its container `job` runs the job; the agent adds the command, environment, the node directories and its labels. Default: a pod with one `job` container of OUTPOST_AGENT_CONTAINER_TASK_IMAGE.',
    parse: (raw: string) => path.resolve(raw),
  },
  kubernetesNodeName: {
    env: ['OUTPOST_AGENT_KUBERNETES_NODE_NAME'],
    description: 'The node a worker runs on (from the downward API: spec.nodeName). Required for a worker.',
    parse: asString,
  },
  kubernetesNodeDataDir: {
    env: ['OUTPOST_AGENT_KUBERNETES_NODE_DATA_DIR'],
    default: '/var/lib/outpost-agent',
    description: 'The workers\' data dir on the nodes (a hostPath, at the same path in the workers and the job pods): where the controller points a job pod for its job directory and the job runtime.',
    parse: (raw: string) => path.resolve(raw),
  },
  kubernetesNodeCacheDir: {
    env: ['OUTPOST_AGENT_KUBERNETES_NODE_CACHE_DIR'],
    default: '/var/cache/outpost-agent',
    description: 'The workers\' cache dir on the nodes (a hostPath or a ReadWriteMany volume, at the same path): engine binaries the job pods run.',
    parse: (raw: string) => path.resolve(raw),
  },
  kubernetesSchedulingTimeout: {
    env: ['OUTPOST_AGENT_KUBERNETES_SCHEDULING_TIMEOUT'],
    default: '120s',
    description: 'How long the controller waits for a job pod to be scheduled and taken over by the worker of its node; then the job fails with `sandbox_failed`, naming why (Unschedulable, no worker on the node, …), and the pod is deleted.',
    parse: asDurationMs,
  },
  kubernetesStartupTimeout: {
    env: ['OUTPOST_AGENT_KUBERNETES_STARTUP_TIMEOUT'],
    default: '180s',
    description: 'How long a job pod\'s `job` container may take to start (pulling its image) before the job fails with `sandbox_failed`, naming the reason (ImagePullBackOff, …).',
    parse: asDurationMs,
  },
  kubernetesPodTtl: {
    env: ['OUTPOST_AGENT_KUBERNETES_POD_TTL'],
    default: '60s',
    description: 'How long a finished job pod is kept (for `kubectl logs` and `describe`) before it is deleted. `0`: at once.',
    parse: asDurationMs,
  },
} as const;

export function defaultNamespace(configured: string | undefined): string {
  return configured ?? ownNamespace();
}
