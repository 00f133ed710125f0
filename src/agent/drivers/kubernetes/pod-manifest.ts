// The job pod: what the kubernetes driver (and the agent's controller) asks
// the cluster for. It starts from the operator's template (the Helm chart
// renders one: placement, security contexts, resources, sidecars…) and adds
// what a job needs: the `job` container's command and environment, the job
// token from a secret (never in the pod spec itself), the node directories
// it shares with the agent (hostPath, at the same paths), the labels that
// name its job, run, phase and owner, and restartPolicy Never.
//
// Two ways to start (both need a POSIX shell in the image): direct (the
// command runs as soon as the container starts) and gated (the container waits for a file the worker on its node
// writes once it has taken the job over and prepared the engine; the file
// sets the environment and the command, then the container execs it).
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';

export const podLabels = {
  instance: 'outpost.dev/instance',
  role: 'outpost.dev/role',
  jobId: 'outpost.dev/job-id',
  runId: 'outpost.dev/run-id',
  phase: 'outpost.dev/phase',
  /** The agent that supervises the job: the controller's until a worker adopts it. */
  agentId: 'outpost.dev/agent-id',
  /** Set by the worker that took the job over. */
  adoptedBy: 'outpost.dev/adopted-by',
} as const;

export const podAnnotations = {
  /** The current lease of the job: whoever takes the job over names it to the control plane. */
  leaseId: 'outpost.dev/lease-id',
  workdir: 'outpost.dev/workdir',
} as const;

/** The container of the template that runs the job; added when the template has none. */
export const jobContainerName = 'job';

/** The file a gated container waits for, inside the job's directory. */
export const gateFileName = '.outpost-gate.sh';

/**
 * Waits for the gate file, sources it (it sets the environment and `$@`),
 * then runs the command. A gate no agent opens within the hour (its worker
 * went away between taking the job and starting it) ends the container, so
 * the pod holds neither its resources nor a node's drain forever.
 */
const gateScript = [
  'gate="$OUTPOST_GATE_FILE"; limit="${OUTPOST_GATE_TIMEOUT:-3600}"; left=$((limit * 5))',
  'while [ ! -f "$gate" ]; do',
  '  if [ "$left" -le 0 ]; then echo "outpost: no agent started this job within $limit s; giving up" >&2; exit 125; fi',
  '  left=$((left - 1)); sleep 0.2',
  'done',
  '. "$gate"; exec "$@" 2>&1',
].join('\n');

/**
 * Runs the command with stderr into stdout: the cluster keeps a container's
 * two streams apart and joins them line by line, which would reorder a line
 * left open on one stream; as one stream the log is the bytes as written.
 */
const directScript = 'exec "$@" 2>&1';

/** Environment variables that are secrets: they reach the pod through the job's secret, never through the pod spec. */
const secretEnv = ['OUTPOST_JOB_TOKEN'] as const;

export interface JobPodRequest {
  jobId: string;
  runId?: string | undefined;
  phase?: string | undefined;
  agentId: string;
  instance: string;
  /** The job's directory on the node (and in the pod). */
  workdir: string;
  /** Node directories the pod sees at the same path, read-only. */
  readOnlyPaths: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Direct: the command. Gated: none (the gate file gives it). */
  command?: readonly string[] | undefined;
  secretName: string;
  leaseId?: string | undefined;
  /** The job container's image when the template does not name one. */
  defaultImage: string;
  /** uid:gid the job runs as when the template does not say. */
  defaultUser: { uid: number; gid: number };
}

/** A DNS-1123 name for the job's pod, unique per job id even though ids are mixed case. */
export function jobPodName(jobId: string): string {
  const digest = createHash('sha256').update(jobId).digest('hex').slice(0, 8);
  return `outpost-${jobId.toLowerCase().replace(/[^a-z0-9-]/g, '-')}-${digest}`.slice(0, 63);
}

export function jobSecretName(jobId: string): string {
  return `${jobPodName(jobId)}-token`.slice(0, 63);
}

/** The job pod from the template and the request. */
export function jobPod(template: V1Pod, request: JobPodRequest): V1Pod {
  const pod = structuredClone(template);
  const name = jobPodName(request.jobId);
  pod.apiVersion = 'v1';
  pod.kind = 'Pod';
  pod.metadata = {
    ...pod.metadata,
    name,
    labels: {
      ...pod.metadata?.labels,
      [podLabels.instance]: request.instance,
      [podLabels.role]: 'job',
      [podLabels.jobId]: request.jobId,
      [podLabels.agentId]: request.agentId,
      ...(request.runId ? { [podLabels.runId]: request.runId } : {}),
      ...(request.phase ? { [podLabels.phase]: request.phase } : {}),
    },
    annotations: {
      ...pod.metadata?.annotations,
      [podAnnotations.workdir]: request.workdir,
      ...(request.leaseId ? { [podAnnotations.leaseId]: request.leaseId } : {}),
    },
  };
  delete pod.metadata.generateName;
  const spec = (pod.spec ??= { containers: [] });
  spec.restartPolicy = 'Never';
  spec.automountServiceAccountToken ??= false;
  spec.securityContext = { runAsUser: request.defaultUser.uid, runAsGroup: request.defaultUser.gid, runAsNonRoot: request.defaultUser.uid !== 0, ...spec.securityContext };
  const volumes = jobVolumes(request);
  spec.volumes = [...(spec.volumes ?? []).filter((volume) => !volume.name.startsWith('outpost-')), ...volumes.map(({ volume }) => volume)];
  const container = jobContainer(spec.containers, request.defaultImage);
  container.volumeMounts = [...(container.volumeMounts ?? []), ...volumes.map(({ mount }) => mount)];
  container.workingDir = request.workdir;
  container.env = [...(container.env ?? []).filter((entry) => !(entry.name in request.env)), ...environment(request)];
  if (request.command === undefined) {
    container.command = ['sh', '-c', gateScript, 'outpost-gate'];
    container.args = [];
  } else {
    container.command = ['sh', '-c', directScript, 'outpost-job', ...request.command];
    container.args = [];
  }
  return pod;
}

/** The template's `job` container (created, and put first, when missing). */
function jobContainer(containers: V1Container[], defaultImage: string): V1Container {
  let container = containers.find((candidate) => candidate.name === jobContainerName);
  if (!container) {
    container = { name: jobContainerName };
    containers.unshift(container);
  }
  container.image ??= defaultImage;
  container.imagePullPolicy ??= 'IfNotPresent';
  container.securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, ...container.securityContext };
  return container;
}

function environment(request: JobPodRequest): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  for (const [name, value] of Object.entries(request.env)) {
    if ((secretEnv as readonly string[]).includes(name)) continue;
    env.push({ name, value });
  }
  for (const name of secretEnv) env.push({ name, valueFrom: { secretKeyRef: { name: request.secretName, key: name } } });
  if (request.command === undefined) env.push({ name: 'OUTPOST_GATE_FILE', value: path.join(request.workdir, gateFileName) });
  return env;
}

/**
 * The job's directory (read-write) and the shared node paths (read-only),
 * each at its own path. The job's directory has type Directory: the agent
 * makes it, for the job's user, before the pod starts; the kubelet never
 * creates it (it would be root's) and retries the mount until it exists.
 * A shared path may be a file (the engine, the Node binary) or a directory.
 */
function jobVolumes(request: JobPodRequest): { volume: V1Volume; mount: V1VolumeMount }[] {
  const paths = [{ path: request.workdir, readOnly: false }, ...dedupe(request.readOnlyPaths).map((shared) => ({ path: shared, readOnly: true }))];
  return paths.map(({ path: nodePath, readOnly }, index) => {
    const name = `outpost-${index === 0 ? 'job' : `shared-${index}`}`;
    return {
      volume: { name, hostPath: { path: nodePath, ...(readOnly ? {} : { type: 'Directory' }) } },
      mount: { name, mountPath: nodePath, readOnly },
    };
  });
}

/** Paths without those inside another listed path (one mount covers them). */
function dedupe(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths.map((entry) => path.resolve(entry)))].sort();
  return sorted.filter((entry, index) => !sorted.slice(0, index).some((outer) => entry.startsWith(`${outer}/`)));
}

/** A shell word: single-quoted, with any single quote closed, escaped and reopened. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** The gate file's text: exports the environment, then sets the command as `$@`. */
export function gateFile(env: Readonly<Record<string, string>>, command: readonly string[]): string {
  const lines = Object.entries(env)
    .filter(([name]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !(secretEnv as readonly string[]).includes(name))
    .map(([name, value]) => `export ${name}=${shellQuote(value)}`);
  return `${lines.join('\n')}\nset -- ${command.map(shellQuote).join(' ')}\n`;
}
