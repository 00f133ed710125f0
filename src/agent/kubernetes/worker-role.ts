// The agent as a Kubernetes worker (OUTPOST_AGENT_KUBERNETES_MODE=worker,
// one per node): it claims nothing from the queue. It watches the job pods
// the scheduler places on its node and takes each job over from the
// controller (adopt, naming the lease the pod carries), marks the pod as
// its own, and runs the job as any claimed job: announce the start, get the
// engine into the node's cache, open the pod's gate (the kubernetes
// driver's worker mode), follow its log and exit, report. Its heartbeats
// keep those leases, so a node that is lost loses its jobs within the lease
// timeout (a plan is queued again, an apply is never re-run).
//
// `kubectl drain` cordons the node first: the worker then reports itself
// draining and applies its stop action to the jobs on the node (drain: they
// finish; grace: interrupted; force: killed); the pod disruption budget of
// job pods holds the eviction back until they have ended.
import path from 'node:path';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { backoff } from '../../protocol/backoff.ts';
import type { AgentRole, JobRunnerDeps, Runner } from '../agent-deps.ts';
import { ProtocolError } from '../control-plane-client.ts';
import type { KubeApi } from '../drivers/kubernetes/kube-api.ts';
import { prepareJobDirectory } from '../drivers/kubernetes/kubernetes-driver.ts';
import { podAnnotations, podLabels } from '../drivers/kubernetes/pod-manifest.ts';
import { JobRunner } from '../job-runner.ts';
import type { StopAction } from '../shutdown-config.ts';
import { labelValue } from './controller-context.ts';

export interface WorkerContext {
  api: KubeApi;
  /** The worker's data dir, a directory of the node: job pods mount their job's directory from it. */
  dataDir: string;
  /** The user job pods run as, who must own the job's directory. */
  jobUser: { uid: number; gid: number };
  instance: string;
  nodeName: string;
  /** What a cordon of the node does to its running jobs (OUTPOST_AGENT_WORKER_ON_STOP_ACTION). */
  onCordon: StopAction;
  logger: Logger;
}

/** Missed watch events are caught up by a full list this often. */
const resyncMs = 30_000;
const watchRetry = { baseMs: 1_000, maxMs: 15_000 } as const;
/** A watch that stayed open this long was healthy: the next one opens without waiting. */
const healthyWatchMs = 5_000;

export class WorkerRole implements AgentRole {
  readonly claims = false;
  readonly #context: WorkerContext;
  readonly #taking = new Set<string>();
  readonly #runners = new Map<string, Runner>();
  readonly #stopping = new AbortController();
  readonly #stops: (() => void)[] = [];
  #cordoned = false;
  #deps: JobRunnerDeps | undefined;
  #follow: ((runner: Runner) => void) | undefined;

  constructor(context: WorkerContext) {
    this.#context = context;
  }

  draining(): boolean {
    return this.#cordoned;
  }

  recovered(runner: Runner): Runner {
    const jobId = runner.job.job_id;
    this.#runners.set(jobId, runner);
    return new TrackedRunner(runner, () => this.#runners.delete(jobId));
  }

  async start(deps: JobRunnerDeps, follow: (runner: Runner) => void): Promise<void> {
    this.#deps = deps;
    this.#follow = follow;
    // A worker starting on a cordoned node takes no job pod from the first look on.
    const node = await this.#context.api.readNode(this.#context.nodeName).catch(() => undefined);
    this.#cordoned = node?.spec?.unschedulable === true;
    await this.#resync();
    void this.#keepWatching('pods', (onEnd) =>
      this.#context.api.watchPods(this.#query(), ({ type, pod }) => (type === 'DELETED' ? undefined : this.#consider(pod)), onEnd),
    );
    void this.#keepWatching('node', (onEnd) => this.#context.api.watchNode(this.#context.nodeName, (node) => this.#nodeChanged(node), onEnd));
    const timer = setInterval(() => void this.#resync(), resyncMs);
    timer.unref();
    this.#stops.push(() => clearInterval(timer));
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    for (const stop of this.#stops.splice(0)) stop();
  }

  #query() {
    return { labelSelector: `${podLabels.instance}=${this.#context.instance},${podLabels.role}=job`, fieldSelector: `spec.nodeName=${this.#context.nodeName}` };
  }

  async #resync(): Promise<void> {
    const pods = await this.#context.api.listPods(this.#query()).catch((error: unknown) => {
      this.#context.logger.warn({ err: (error as Error).message }, 'could not list the job pods of this node');
      return [] as V1Pod[];
    });
    for (const pod of pods) this.#consider(pod);
  }

  /**
   * Runs a watch again whenever it ends (the API server closes watches, and
   * the client ends a quiet one), until the worker stops. A watch that held
   * a while is opened again at once; one that keeps failing, with backoff.
   */
  async #keepWatching(what: string, open: (onEnd: (error?: unknown) => void) => Promise<() => void>): Promise<void> {
    const stopping = this.#stopping.signal;
    for (let failures = 0; !stopping.aborted; ) {
      const ended = Promise.withResolvers<unknown>();
      const onStop = () => ended.resolve(undefined);
      stopping.addEventListener('abort', onStop, { once: true });
      const openedAt = Date.now();
      let stop: (() => void) | undefined;
      try {
        stop = await open((error) => ended.resolve(error));
        const error = await ended.promise;
        if (error) this.#context.logger.debug({ err: (error as Error).message, what }, 'watch ended; watching again');
        failures = Date.now() - openedAt > healthyWatchMs ? 0 : failures + 1;
      } catch (error) {
        this.#context.logger.warn({ err: (error as Error).message, what }, 'could not watch; trying again');
        failures++;
      } finally {
        stopping.removeEventListener('abort', onStop);
        stop?.();
      }
      if (failures > 0 && !stopping.aborted) await new Promise((resolve) => setTimeout(resolve, backoff(failures - 1, watchRetry)).unref());
    }
  }

  #consider(pod: V1Pod): void {
    const labels = pod.metadata?.labels ?? {};
    const jobId = labels[podLabels.jobId];
    const leaseId = pod.metadata?.annotations?.[podAnnotations.leaseId];
    // The job id names a directory of the node: only one the server could have made.
    if (!jobId || !/^job-[A-Za-z0-9_-]+$/.test(jobId) || !leaseId || labels[podLabels.adoptedBy] !== undefined || pod.spec?.nodeName !== this.#context.nodeName) return;
    if (this.#cordoned || this.#stopping.signal.aborted || this.#taking.has(jobId) || this.#runners.has(jobId)) return;
    this.#taking.add(jobId);
    void this.#takeOver(pod, jobId, leaseId).finally(() => this.#taking.delete(jobId));
  }

  async #takeOver(pod: V1Pod, jobId: string, leaseId: string): Promise<void> {
    const deps = this.#deps!;
    const { api, logger } = this.#context;
    const name = pod.metadata!.name!;
    let adoption;
    try {
      // Before the pod's container can start (its mount waits for the directory).
      await prepareJobDirectory(path.join(this.#context.dataDir, 'jobs', jobId), this.#context.jobUser);
      adoption = await deps.client.adoptJob(deps.session(), jobId, leaseId);
    } catch (error) {
      // A lease the pod no longer names (a controller took the pod over meanwhile): its next change brings the current one.
      if (error instanceof ProtocolError && (error.code === 'lease_stale' || error.code === 'not_found')) logger.debug({ job: jobId, err: error.message }, 'not taking over the job pod');
      else logger.warn({ job: jobId, pod: name, err: (error as Error).message }, 'could not take the job over');
      return;
    }
    try {
      await api.annotatePod(name, { labels: { [podLabels.adoptedBy]: labelValue(deps.agentId), [podLabels.agentId]: labelValue(deps.agentId) }, annotations: { [podAnnotations.leaseId]: adoption.lease_id } });
    } catch (error) {
      // The job is ours now either way; the controller sees the take-over through the lease.
      logger.warn({ job: jobId, pod: name, err: (error as Error).message }, 'could not mark the job pod as taken over');
    }
    logger.info({ job: jobId, run: adoption.run_id, pod: name }, 'took over a job pod scheduled to this node');
    const runner = JobRunner.claimed({ ...adoption, job_token: '' }, deps);
    this.#runners.set(jobId, runner);
    const uid = pod.metadata?.uid;
    this.#follow!(
      new TrackedRunner(runner, () => {
        this.#runners.delete(jobId);
        // Ended before its sandbox was started (the engine could not be had,
        // a stop came first): the driver never had the pod, and its gate
        // would hold it (and the node's drain) forever.
        if (runner.sandboxStarted) return;
        logger.info({ job: jobId, pod: name }, 'deleting the job pod of a job that ended before it started');
        void api.deletePod(name, 0, uid).catch((error: unknown) => logger.warn({ job: jobId, pod: name, err: (error as Error).message }, 'could not delete the job pod'));
      }),
    );
  }

  #nodeChanged(node: V1Node): void {
    const cordoned = node.spec?.unschedulable === true;
    if (cordoned === this.#cordoned) return;
    this.#cordoned = cordoned;
    const action = this.#context.onCordon;
    this.#context.logger.warn({ node: this.#context.nodeName, action, jobs: [...this.#runners.keys()] }, cordoned ? `node cordoned: taking no new job pods; running ones: ${action}` : 'node uncordoned: taking job pods again');
    if (!cordoned) {
      void this.#resync();
      return;
    }
    for (const runner of this.#runners.values()) void runner.stopForAgent(action, `node ${this.#context.nodeName} is cordoned (kubectl drain)`);
  }
}

/** A job runner the worker forgets (for the cordon) once the agent's run of it ends. */
class TrackedRunner implements Runner {
  readonly #runner: Runner;
  readonly #ended: () => void;

  constructor(runner: Runner, ended: () => void) {
    this.#runner = runner;
    this.#ended = ended;
  }

  get job() {
    return this.#runner.job;
  }

  run() {
    return this.#runner.run().finally(this.#ended);
  }

  signal(...args: Parameters<Runner['signal']>) {
    return this.#runner.signal(...args);
  }

  stopForAgent(...args: Parameters<Runner['stopForAgent']>) {
    return this.#runner.stopForAgent(...args);
  }

  abandon() {
    return this.#runner.abandon();
  }
}
