// What the Kubernetes controller's pieces share: the API, the pod template,
// where the workers keep their data and caches on the nodes, the waits, and
// how a job's pod is made (gated: it runs once the worker of its node has
// taken the job over and written its gate file).
import path from 'node:path';
import { ApiException, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeApi } from '../drivers/kubernetes/kube-api.ts';
import { jobPod, jobSecretName, podLabels } from '../drivers/kubernetes/pod-manifest.ts';
import type { PodWaiter } from '../drivers/kubernetes/pod-waiter.ts';

export interface ControllerContext {
  api: KubeApi;
  waiter: PodWaiter;
  template: V1Pod;
  instance: string;
  /** This controller's name (its pod's), on the pods it made: a restarted or other controller takes over only those whose controller is gone. */
  controllerName: string;
  nodeDataDir: string;
  nodeCacheDir: string;
  defaultImage: string;
  jobUser: { uid: number; gid: number };
  schedulingTimeoutMs: number;
  serverUrl: string;
  maxArchiveMb: number;
  logger: Logger;
}

/** The label a pod made by this controller carries. */
export const controllerLabel = 'outpost.dev/controller';

/** A label value from a name (pod names are valid label values up to 63 characters). */
export function labelValue(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') || 'agent';
}

export interface GatedPodJob {
  jobId: string;
  runId: string;
  kind: string;
  leaseId: string;
  jobToken: string;
  agentId: string;
}

/** Creates the job token's secret and the job's gated pod; returns the pod. */
export async function createGatedPod(context: ControllerContext, job: GatedPodJob): Promise<V1Pod> {
  const { api } = context;
  const secretName = jobSecretName(job.jobId);
  await api.deleteSecret(secretName);
  await api.createSecret({ metadata: { name: secretName, labels: { [podLabels.instance]: context.instance, [podLabels.jobId]: job.jobId } }, stringData: { OUTPOST_JOB_TOKEN: job.jobToken } });
  const pod = jobPod(context.template, {
    jobId: job.jobId,
    runId: job.runId,
    phase: job.kind,
    agentId: labelValue(job.agentId),
    instance: context.instance,
    workdir: path.join(context.nodeDataDir, 'jobs', job.jobId),
    readOnlyPaths: [path.join(context.nodeDataDir, 'runtime'), context.nodeCacheDir],
    env: { OUTPOST_JOB_SERVER_URL: context.serverUrl, OUTPOST_JOB_TOKEN: job.jobToken, OUTPOST_JOB_MAX_ARCHIVE_MB: String(context.maxArchiveMb) },
    secretName,
    leaseId: job.leaseId,
    defaultImage: context.defaultImage,
    defaultUser: context.jobUser,
  });
  pod.metadata!.labels![controllerLabel] = labelValue(context.controllerName);
  let created: V1Pod;
  try {
    created = await createReplacing(context, pod);
  } catch (error) {
    await api.deleteSecret(secretName);
    throw error;
  }
  await api.ownSecretByPod(secretName, created).catch((error: unknown) => context.logger.warn({ err: (error as Error).message }, 'could not make the pod own its token secret'));
  return created;
}

/**
 * Creates the pod; one of the same job left from an earlier claim of it (a
 * plan queued again after its agent was lost) is deleted first: its lease
 * is dead, so its job token is too.
 */
async function createReplacing(context: ControllerContext, pod: V1Pod): Promise<V1Pod> {
  try {
    return await context.api.createPod(pod);
  } catch (error) {
    if (!(error instanceof ApiException) || error.code !== 409) throw error;
  }
  const name = pod.metadata!.name!;
  context.logger.info({ pod: name }, 'deleting a pod left from an earlier claim of the job');
  await context.api.deletePod(name, 0);
  await context.waiter.gone(name);
  return context.api.createPod(pod);
}

/** Why a pod that nobody took over is still waiting: not scheduled (and why), or on a node whose worker did not take it. */
export async function whyNotTaken(context: ControllerContext, podName: string): Promise<string> {
  const pod = await context.api.readPod(podName).catch(() => undefined);
  if (!pod) return 'the pod is gone';
  const node = pod.spec?.nodeName;
  if (node) return `it was scheduled to node ${node}, but no Outpost worker there took it over (is the worker DaemonSet running on that node?)`;
  const condition = pod.status?.conditions?.find((entry) => entry.type === 'PodScheduled' && entry.status === 'False');
  const events = await context.api.podEvents(podName).catch(() => [] as string[]);
  const last = events.at(-1);
  const reason = condition ? `${condition.reason ?? 'Unschedulable'}: ${condition.message ?? ''}`.trim() : last;
  return `it was not scheduled to any node${reason ? ` (${reason})` : ''}`;
}
