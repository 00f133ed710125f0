// The agent as the Kubernetes controller (OUTPOST_AGENT_KUBERNETES_MODE=
// controller): it claims jobs as any agent does, but runs each by creating
// its pod and waiting for the worker of the pod's node to take it over
// (pod-dispatch.ts). When it starts, it takes over the pods still waiting
// for a worker whose controller is gone (a restarted controller's, or a
// replica's that was removed), with their jobs' leases, so a controller
// restart loses no job; pods of a live controller are left to it.
import type { JobAssignment } from '../../protocol/agent-api.ts';
import type { AgentRole, JobRunnerDeps, Runner } from '../agent-deps.ts';
import { ProtocolError } from '../control-plane-client.ts';
import { podAnnotations, podLabels } from '../drivers/kubernetes/pod-manifest.ts';
import type { JobKind } from '../../protocol/statuses.ts';
import { controllerLabel, labelValue, type ControllerContext } from './controller-context.ts';
import { PodDispatch } from './pod-dispatch.ts';

/** How long after a failed take-over a controller looks at the pod again: a worker that adopted it has marked it by then. */
const staleRecheckMs = 15_000;

export class ControllerRole implements AgentRole {
  readonly claims = true;
  readonly #context: ControllerContext;

  constructor(context: ControllerContext) {
    this.#context = context;
  }

  runnerFor(assignment: JobAssignment, deps: JobRunnerDeps): Runner {
    return PodDispatch.claimed(assignment, deps, this.#context);
  }

  async start(deps: JobRunnerDeps, follow: (runner: Runner) => void): Promise<void> {
    const { api, instance, logger } = this.#context;
    const mine = labelValue(this.#context.controllerName);
    const waiting = await api.listPods({ labelSelector: `${podLabels.instance}=${instance},${podLabels.role}=job,!${podLabels.adoptedBy}` }).catch((error: unknown) => {
      logger.warn({ err: (error as Error).message }, 'could not list the job pods waiting for a worker');
      return [];
    });
    for (const pod of waiting) {
      const name = pod.metadata?.name ?? '';
      const owner = pod.metadata?.labels?.[controllerLabel];
      // A pod of a live controller is that controller's; one of this controller's previous container is this one's.
      if (owner !== undefined && owner !== mine && (await api.readPod(owner).catch(() => undefined)) !== undefined) continue;
      const jobId = pod.metadata?.labels?.[podLabels.jobId];
      const leaseId = pod.metadata?.annotations?.[podAnnotations.leaseId];
      if (!jobId || !leaseId) continue;
      try {
        const adoption = await deps.client.adoptJob(deps.session(), jobId, leaseId);
        await api.annotatePod(name, { labels: { [controllerLabel]: mine, [podLabels.agentId]: labelValue(deps.agentId) }, annotations: { [podAnnotations.leaseId]: adoption.lease_id } });
        logger.info({ job: jobId, pod: name, from: owner }, 'took over a job pod waiting for a worker');
        follow(PodDispatch.resumed({ job_id: jobId, lease_id: adoption.lease_id, run_id: adoption.run_id, kind: adoption.kind as JobKind }, deps, this.#context));
      } catch (error) {
        if (error instanceof ProtocolError && error.code === 'not_found') {
          await api.deletePod(name, 0, pod.metadata?.uid).catch(() => undefined);
          logger.info({ job: jobId, pod: name }, 'deleted a job pod whose job no longer exists');
        } else if (error instanceof ProtocolError && error.code === 'lease_stale') {
          // Its job ended, or a worker took it over since the list (and is
          // about to mark the pod): look again once a worker would have.
          setTimeout(() => void this.#removeIfStillWaiting(name, leaseId, pod.metadata?.uid), staleRecheckMs).unref();
        } else logger.warn({ job: jobId, pod: name, err: (error as Error).message }, 'could not take over a job pod; its lease will lapse');
      }
    }
  }

  /** Deletes a pod nobody took over that still names a lease the control plane no longer holds: nothing will run it. */
  async #removeIfStillWaiting(name: string, leaseId: string, uid: string | undefined): Promise<void> {
    const { api, logger } = this.#context;
    const pod = await api.readPod(name).catch(() => undefined);
    if (!pod || pod.metadata?.uid !== uid || pod.metadata?.labels?.[podLabels.adoptedBy] !== undefined || pod.metadata?.annotations?.[podAnnotations.leaseId] !== leaseId) return;
    await api.deletePod(name, 0, uid).catch(() => undefined);
    logger.info({ pod: name }, 'deleted a job pod whose job the control plane no longer leases');
  }
}
