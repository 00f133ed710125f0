// The Kubernetes controller's runner of one claimed job: it creates the
// job's pod and holds the job's lease until the worker on the node the pod
// was scheduled to takes the job over (adopt), then lets go of it. If no
// worker does within the scheduling timeout, the job fails with
// sandbox_failed saying why (not scheduled and the scheduler's reason, or
// scheduled to a node without a worker) and the pod is deleted. A cancel
// before the take-over deletes the pod and ends the job canceled; the
// controller's own stop (grace or force) deletes the pod and hands the job
// back to the queue (it never started); drain lets the take-over happen.
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { JobAssignment, JobErrorInfo, SignalAction } from '../../protocol/agent-api.ts';
import type { JobRunnerDeps, Runner, RunnerJob } from '../agent-deps.ts';
import { ProtocolError } from '../control-plane-client.ts';
import { jobPodName, podLabels } from '../drivers/kubernetes/pod-manifest.ts';
import type { JobEnd } from '../job-end.ts';
import { LogShipper } from '../log-shipper.ts';
import type { StopAction } from '../shutdown-config.ts';
import { controllerLabel, createGatedPod, labelValue, whyNotTaken, type ControllerContext } from './controller-context.ts';

type Interruption = { kind: 'canceled' } | { kind: 'agent-stop'; action: StopAction; reason: string } | { kind: 'abandoned' };
/** What the control plane said to the controller ending a job: refused means another agent (a worker) holds it now. */
type Report = 'accepted' | 'refused' | 'unknown';
type Ended = { end: JobEnd; report: Report };

/** How long a worker may take between taking a job over and marking its pod. */
const takeOverMarkMs = 10_000;
/** A job's log line from the controller is written and sent before the pod exists, so the worker continues the log after it. */
const controllerLogCloseMs = 5_000;

export class PodDispatch implements Runner {
  readonly job: RunnerJob;
  readonly #deps: JobRunnerDeps;
  readonly #context: ControllerContext;
  readonly #logger: Logger;
  /** Undefined for a pod this controller took over from another one (it exists already). */
  readonly #assignment: JobAssignment | undefined;
  readonly #interrupted = Promise.withResolvers<Interruption>();

  private constructor(job: RunnerJob, assignment: JobAssignment | undefined, deps: JobRunnerDeps, context: ControllerContext) {
    this.job = job;
    this.#assignment = assignment;
    this.#deps = deps;
    this.#context = context;
    this.#logger = deps.logger.child({ job: job.job_id, run: job.run_id, kind: job.kind, pod: jobPodName(job.job_id) });
  }

  static claimed(assignment: JobAssignment, deps: JobRunnerDeps, context: ControllerContext): PodDispatch {
    return new PodDispatch(assignment, assignment, deps, context);
  }

  /** A pod whose controller is gone, taken over (with its job's lease) by this one. */
  static resumed(job: RunnerJob, deps: JobRunnerDeps, context: ControllerContext): PodDispatch {
    return new PodDispatch(job, undefined, deps, context);
  }

  async signal(_action: SignalAction): Promise<void> {
    this.#interrupted.resolve({ kind: 'canceled' });
  }

  async stopForAgent(action: StopAction, reason: string): Promise<void> {
    // Drain: the worker of the pod's node takes the job over as usual.
    if (action !== 'drain') this.#interrupted.resolve({ kind: 'agent-stop', action, reason });
  }

  async abandon(): Promise<void> {
    this.#interrupted.resolve({ kind: 'abandoned' });
  }

  async run(): Promise<JobEnd> {
    const podName = jobPodName(this.job.job_id);
    if (this.#assignment) {
      const created = await this.#createPod(this.#assignment);
      if (created instanceof Error) return (await this.#fail({ code: 'sandbox_failed', message: `the job pod could not be created: ${created.message}` })).end;
    }
    const timeout = Promise.withResolvers<'timeout'>();
    const timer = setTimeout(() => timeout.resolve('timeout'), this.#context.schedulingTimeoutMs);
    const taken = this.#context.waiter.until(podName, (pod) => (pod === undefined ? 'deleted' : this.#takenOver(pod) ? 'taken' : undefined));
    const outcome = await Promise.race([taken, timeout.promise, this.#interrupted.promise]);
    clearTimeout(timer);
    if (outcome === 'taken') {
      this.#logger.info({ node: await this.#nodeOf(podName) }, 'job handed over to the worker of its node');
      return 'handed_over';
    }
    // Whatever else happened, a worker may just have taken the job: then it is the worker's.
    if (await this.#wasTakenOver(podName)) return 'handed_over';
    if (outcome === 'deleted') return (await this.#fail({ code: 'sandbox_failed', message: `the job pod ${podName} was deleted before a worker took the job over` })).end;
    // Abandoned: the control plane let go of the lease, most likely because a
    // worker took the job over a moment before it marks the pod: give it that
    // moment. The pod is deleted only if it is still this controller's.
    if (outcome !== 'timeout' && outcome.kind === 'abandoned') {
      const marked = await Promise.race([this.#context.waiter.until(podName, (pod) => (pod === undefined || this.#takenOver(pod) ? true : undefined)), sleep(takeOverMarkMs, false)]);
      if (marked || !(await this.#stillOurs(podName))) return (await this.#wasTakenOver(podName)) ? 'handed_over' : 'abandoned';
      await this.#context.api.deletePod(podName, 0).catch(() => undefined);
      return 'abandoned';
    }
    const uid = (await this.#context.api.readPod(podName).catch(() => undefined))?.metadata?.uid;
    // The control plane says who holds the job: end it there first, under
    // this controller's lease. A worker that adopted it meanwhile makes that
    // fail, and the pod is then the worker's, whatever its labels say yet.
    const ended =
      outcome === 'timeout'
        ? await this.#fail({ code: 'sandbox_failed', message: `no worker took the job over within ${Math.round(this.#context.schedulingTimeoutMs / 1000)} s (OUTPOST_AGENT_KUBERNETES_SCHEDULING_TIMEOUT): ${await whyNotTaken(this.#context, podName)}` })
        : await this.#interruptedEnd(outcome);
    if (ended.report === 'refused' || (ended.report === 'unknown' && (await this.#wasTakenOver(podName)))) return 'handed_over';
    // By uid: once the job is back in the queue, its next pod has this name.
    await this.#context.api.deletePod(podName, 0, uid).catch(() => undefined);
    return ended.end;
  }

  async #createPod(assignment: JobAssignment): Promise<V1Pod | Error> {
    const name = jobPodName(assignment.job_id);
    await this.#line(`Outpost controller ${this.#deps.config.name}: ${assignment.kind} job ${assignment.job_id}: creating pod ${name} in namespace ${this.#context.api.namespace}; the Outpost worker on the node it is scheduled to runs it.`);
    try {
      return await createGatedPod(this.#context, {
        jobId: assignment.job_id,
        runId: assignment.run_id,
        kind: assignment.kind,
        leaseId: assignment.lease_id,
        jobToken: assignment.job_token,
        agentId: this.#deps.agentId,
      });
    } catch (error) {
      this.#logger.error({ err: (error as Error).message }, 'could not create the job pod');
      return error as Error;
    }
  }

  async #interruptedEnd(interruption: Exclude<Interruption, { kind: 'abandoned' }>): Promise<Ended> {
    const { client, session } = this.#deps;
    switch (interruption.kind) {
      case 'canceled':
        await this.#line('The job was canceled before a node ran it: nothing was run.');
        return { end: 'canceled', report: await this.#finish('canceled') };
      case 'agent-stop': {
        // It never started: queued again at once, for the next controller.
        const report = await this.#report(client.reportLost(session(), this.job.job_id, this.job.lease_id), 'hand the job back');
        if (report === 'accepted') this.#logger.info({ reason: interruption.reason }, 'controller stopping: handed the job back and deleted its pod');
        return { end: 'stopped', report };
      }
    }
  }

  #takenOver(pod: V1Pod): boolean {
    return pod.metadata?.labels?.[podLabels.adoptedBy] !== undefined;
  }

  async #stillOurs(podName: string): Promise<boolean> {
    const pod = await this.#context.api.readPod(podName).catch(() => undefined);
    return pod?.metadata?.labels?.[controllerLabel] === labelValue(this.#context.controllerName);
  }

  async #wasTakenOver(podName: string): Promise<boolean> {
    const pod = await this.#context.api.readPod(podName).catch(() => undefined);
    return pod !== undefined && this.#takenOver(pod);
  }

  async #nodeOf(podName: string): Promise<string | undefined> {
    return (await this.#context.api.readPod(podName).catch(() => undefined))?.spec?.nodeName;
  }

  async #fail(error: JobErrorInfo): Promise<Ended> {
    await this.#line(`Error: ${error.message} [${error.code}]`);
    this.#logger.warn({ err: error.message }, 'the job could not be handed to a node');
    return { end: 'failed', report: await this.#finish('failed', error) };
  }

  #finish(status: 'failed' | 'canceled', error?: JobErrorInfo): Promise<Report> {
    return this.#report(this.#deps.client.finishJob(this.#deps.session(), this.job.job_id, { lease_id: this.job.lease_id, status, ...(error ? { error } : {}) }), 'report the job result');
  }

  /** Whether the control plane took the call; it refuses one under a lease it no longer holds for this controller. */
  async #report(call: Promise<void>, what: string): Promise<Report> {
    try {
      await call;
      return 'accepted';
    } catch (error) {
      if (error instanceof ProtocolError && (error.code === 'lease_stale' || error.code === 'not_found')) return 'refused';
      this.#logger.warn({ err: (error as Error).message }, `could not ${what}`);
      return 'unknown';
    }
  }

  /** One line in the job's log, sent before anything else happens (a worker may continue the log right after). */
  async #line(text: string): Promise<void> {
    const { client, session } = this.#deps;
    try {
      const offset = await client.logSize(session(), this.job.job_id, this.job.lease_id);
      const shipper = new LogShipper({ client, session: session(), jobId: this.job.job_id, leaseId: this.job.lease_id, startOffset: offset, logger: this.#logger });
      shipper.line(text);
      await shipper.close(controllerLogCloseMs);
    } catch (error) {
      this.#logger.warn({ err: (error as Error).message }, 'could not write to the job log');
    }
  }
}
