// Agent settings that must agree with each other (settings.ts, SettingsRule):
// each value is valid alone, but together they ask for something the agent
// cannot do. The agent refuses to start with a sentence naming both, rather
// than starting and surprising its operator later.
import type { SettingsRule } from '../config/settings.ts';

/** The fields the rules read; the agent's settings have them all. */
export interface RuledAgentSettings {
  token: string | undefined;
  tokenFile: string | undefined;
  single: boolean;
  singleJobId: string | undefined;
  concurrency: number;
  driver: 'auto' | 'docker' | 'local' | 'kubernetes';
  kubernetesMode: 'controller' | 'worker' | undefined;
  kubernetesNodeName: string | undefined;
  memoryLimitMb: number | undefined;
  containerTaskMemLimit: number;
  onStopAction: 'drain' | 'grace' | 'force';
  drainTimeout: number;
  graceShutdownTimeout: number;
  providerCacheEnabled: boolean;
  providerMirrorPort: number;
  healthPort: number;
}

export const agentRules: readonly SettingsRule<RuledAgentSettings>[] = [
  {
    settings: ['OUTPOST_AGENT_TOKEN', 'OUTPOST_AGENT_TOKEN_FILE'],
    description: 'the pool token comes from one place: the variable or the file.',
    check: ({ token, tokenFile }) =>
      token !== undefined && tokenFile !== undefined ? `both OUTPOST_AGENT_TOKEN (or SCALR_AGENT_TOKEN) and OUTPOST_AGENT_TOKEN_FILE=${tokenFile} are set: keep one of them.` : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_JOB_ID', 'OUTPOST_AGENT_SINGLE'],
    description: 'an agent started for one job runs that job and exits: single mode.',
    check: ({ singleJobId, single }) =>
      singleJobId !== undefined && !single ? `OUTPOST_AGENT_JOB_ID=${singleJobId} names the one job to run, which only a single-mode agent does: set OUTPOST_AGENT_SINGLE=true too.` : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_DRIVER', 'OUTPOST_AGENT_KUBERNETES_MODE'],
    description: 'the kubernetes driver needs to know which part the agent plays: `controller` or `worker`; the other drivers have no part to play.',
    check: ({ driver, kubernetesMode }) => {
      if (driver === 'kubernetes' && kubernetesMode === undefined) return 'OUTPOST_AGENT_DRIVER=kubernetes needs OUTPOST_AGENT_KUBERNETES_MODE: `controller` (claims jobs and creates their pods) or `worker` (runs the pods on its node; one per node). The agent-k8s Helm chart sets both.';
      if (driver !== 'kubernetes' && kubernetesMode !== undefined) return `OUTPOST_AGENT_KUBERNETES_MODE=${kubernetesMode} needs OUTPOST_AGENT_DRIVER=kubernetes, but the driver is ${driver}.`;
      return undefined;
    },
  },
  {
    settings: ['OUTPOST_AGENT_KUBERNETES_MODE', 'OUTPOST_AGENT_KUBERNETES_NODE_NAME'],
    description: 'a worker runs the job pods of one node, which it must be told (the downward API\'s spec.nodeName).',
    check: ({ kubernetesMode, kubernetesNodeName }) =>
      kubernetesMode === 'worker' && kubernetesNodeName === undefined
        ? 'OUTPOST_AGENT_KUBERNETES_MODE=worker needs OUTPOST_AGENT_KUBERNETES_NODE_NAME, the node it runs on (valueFrom: fieldRef: spec.nodeName).'
        : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_KUBERNETES_MODE', 'OUTPOST_AGENT_SINGLE'],
    description: 'single mode runs one job in this process; a Kubernetes controller or worker runs jobs in pods for as long as it lives.',
    check: ({ kubernetesMode, single }) =>
      kubernetesMode !== undefined && single ? `OUTPOST_AGENT_KUBERNETES_MODE=${kubernetesMode} cannot run in single mode (OUTPOST_AGENT_SINGLE=true): drop one of them.` : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_SINGLE', 'OUTPOST_AGENT_CONCURRENCY'],
    description: 'a single-mode agent runs exactly one job, so a concurrency above 1 cannot be honoured.',
    check: ({ single, concurrency }, explicit) =>
      single && explicit.has('concurrency') && concurrency > 1
        ? `OUTPOST_AGENT_SINGLE=true runs exactly one job, but OUTPOST_AGENT_CONCURRENCY=${concurrency} asks for ${concurrency} at once. Drop OUTPOST_AGENT_CONCURRENCY (or set it to 1), or turn single mode off.`
        : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_MEMORY_LIMIT_MB', 'OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT'],
    description: 'with the docker driver, the memory guard\'s limit cannot be above the job container\'s own limit: the kernel would kill the job before the guard could interrupt it.',
    check: ({ driver, memoryLimitMb, containerTaskMemLimit }) =>
      driver === 'docker' && memoryLimitMb !== undefined && memoryLimitMb > containerTaskMemLimit
        ? `OUTPOST_AGENT_MEMORY_LIMIT_MB=${memoryLimitMb} is above OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT=${containerTaskMemLimit}: job containers are killed at ${containerTaskMemLimit} MiB, before the memory guard's soft limit is reached. Leave OUTPOST_AGENT_MEMORY_LIMIT_MB unset (it then follows the container limit) or lower it.`
        : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_WORKER_ON_STOP_ACTION', 'OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT'],
    description: '`drain` lets running jobs finish for the drain timeout; a drain timeout of 0 interrupts them at once, which is `grace`.',
    check: ({ onStopAction, drainTimeout }) =>
      onStopAction === 'drain' && drainTimeout === 0
        ? 'OUTPOST_AGENT_WORKER_ON_STOP_ACTION=drain lets running jobs finish, but OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT=0 gives them no time to: set a drain timeout, or say OUTPOST_AGENT_WORKER_ON_STOP_ACTION=grace if jobs should be interrupted at once.'
        : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_WORKER_ON_STOP_ACTION', 'OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT'],
    description: '`grace` gives an interrupted job the grace timeout to stop at a safe point and save its state; a grace timeout of 0 kills it at once, which is `force`.',
    check: ({ onStopAction, graceShutdownTimeout }) =>
      onStopAction === 'grace' && graceShutdownTimeout === 0
        ? 'OUTPOST_AGENT_WORKER_ON_STOP_ACTION=grace gives interrupted jobs time to save their state, but OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT=0 kills them at once: set a grace timeout (60s is the default), or say OUTPOST_AGENT_WORKER_ON_STOP_ACTION=force.'
        : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_PROVIDER_MIRROR_PORT', 'OUTPOST_AGENT_PROVIDER_CACHE_ENABLED'],
    description: 'the provider mirror port is the provider cache\'s listener; it cannot be set while the cache is off.',
    check: ({ providerCacheEnabled, providerMirrorPort }) =>
      !providerCacheEnabled && providerMirrorPort !== 0
        ? `OUTPOST_AGENT_PROVIDER_MIRROR_PORT=${providerMirrorPort} sets the port of the provider cache, but OUTPOST_AGENT_PROVIDER_CACHE_ENABLED=false turns the cache off: drop one of them.`
        : undefined,
  },
  {
    settings: ['OUTPOST_AGENT_HEALTH_HOST', 'OUTPOST_AGENT_HEALTH_PORT'],
    description: 'the health host is the address of the health listener, which is off while the port is 0.',
    check: ({ healthPort }, explicit) =>
      explicit.has('healthHost') && healthPort === 0
        ? 'OUTPOST_AGENT_HEALTH_HOST is set, but the health listener is off (OUTPOST_AGENT_HEALTH_PORT=0, the default): set OUTPOST_AGENT_HEALTH_PORT too, or drop OUTPOST_AGENT_HEALTH_HOST.'
        : undefined,
  },
];
