// Reading a job pod's status: is its `job` container running, has it ended
// (and how), or is it stuck before starting (a reason a person can act on:
// Unschedulable, ImagePullBackOff, CreateContainerConfigError…).
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { ExitResult } from '../driver.ts';
import { jobContainerName } from './pod-manifest.ts';

export type JobContainerState =
  | { state: 'pending'; reason: string | undefined }
  | { state: 'running' }
  | { state: 'terminated'; exit: ExitResult }
  /** A state it will not leave by itself. */
  | { state: 'stuck'; reason: string };

/** Waiting reasons that never clear without someone changing the pod, the image or the cluster. */
const hopelessWaiting = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError', 'ErrImageNeverPull']);

/**
 * The kubelet's own caches not yet holding a Secret or ConfigMap the pod
 * names (the job token's Secret, created a moment before the pod): it
 * reports CreateContainerConfigError and retries by itself within seconds.
 */
const transientConfigError = /failed to sync (secret|configmap) cache/i;

function jobContainerStatus(pod: V1Pod): V1ContainerStatus | undefined {
  return pod.status?.containerStatuses?.find((status) => status.name === jobContainerName);
}

export function jobContainerState(pod: V1Pod): JobContainerState {
  const status = jobContainerStatus(pod);
  const terminated = status?.state?.terminated;
  if (terminated) {
    const oomKilled = terminated.reason === 'OOMKilled';
    // 128 + n: the container's first process died of signal n, as a shell reports it.
    const signal = terminated.exitCode > 128 && terminated.exitCode <= 128 + 64 ? signalName(terminated.exitCode - 128) : null;
    return { state: 'terminated', exit: { code: signal ? null : terminated.exitCode, signal, oomKilled } };
  }
  if (status?.state?.running) return { state: 'running' };
  const waiting = status?.state?.waiting;
  const transient = waiting?.reason === 'CreateContainerConfigError' && transientConfigError.test(waiting.message ?? '');
  if (waiting?.reason && hopelessWaiting.has(waiting.reason) && !transient) return { state: 'stuck', reason: `${waiting.reason}: ${waiting.message ?? ''}`.trim() };
  if (pod.status?.phase === 'Failed') return { state: 'stuck', reason: `the pod failed: ${pod.status.reason ?? ''} ${pod.status.message ?? ''}`.trim() };
  const unscheduled = pod.status?.conditions?.find((condition) => condition.type === 'PodScheduled' && condition.status === 'False');
  if (unscheduled) return { state: 'pending', reason: `${unscheduled.reason ?? 'Unschedulable'}: ${unscheduled.message ?? ''}`.trim() };
  return { state: 'pending', reason: waiting?.reason ? `${waiting.reason}: ${waiting.message ?? ''}`.trim() : undefined };
}

function signalName(number: number): NodeJS.Signals | null {
  const names: Partial<Record<number, NodeJS.Signals>> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 15: 'SIGTERM' };
  return names[number] ?? null;
}
