// Runs one claimed job: prepares the engine binary, starts the operation in
// a sandbox through the driver, streams its output as the run log, acts on
// cancel signals, and reports the outcome. Terraform-specific work stays in
// the operation; this file only knows processes, logs and the protocol.
import path from 'node:path';
import type { Logger } from 'pino';
import type { JobAssignment, JobErrorInfo, SignalAction } from '../protocol/agent-api.ts';
import { jobExitCodes } from '../protocol/statuses.ts';
import type { AgentMetrics } from './agent-metrics.ts';
import type { AgentConfig } from './config.ts';
import type { StopAction } from './shutdown-config.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import type { Driver, ExitResult, TaskHandle } from './drivers/driver.ts';
import type { EngineCache } from './engines/engine-cache.ts';
import { errorInfo, exitError, outcomeOf, stoppedError } from './job-outcome.ts';
import { runtimeFor } from './job-runtime.ts';
import { providerEnvironment, type ProviderMirror } from './providers/provider-mirror.ts';
import { LogShipper } from './log-shipper.ts';
import { startMemoryGuard, type MemoryGuard } from './memory-guard.ts';
import type { JobMemoryLimit } from './memory-limit.ts';
import type { PlanWorkdirs } from './plan-workdirs.ts';
import type { TaskHandleStore } from './task-handles.ts';

/** What the agent process shares with every job it runs. */
export interface AgentDeps {
  config: AgentConfig;
  client: ControlPlaneClient;
  driver: Driver;
  engines: EngineCache;
  logger: Logger;
  baseEnv: Readonly<Record<string, string>>;
  handles: TaskHandleStore;
  /** The provider cache's mirror; absent when the cache is off. */
  providers?: ProviderMirror | undefined;
  /** The per-job limit the memory guard measures against; absent when the guard is off. */
  memoryLimit?: JobMemoryLimit | undefined;
  /** Prometheus metrics; absent when the health listener is off (OUTPOST_AGENT_HEALTH_PORT=0). */
  metrics?: AgentMetrics | undefined;
  /** Plan jobs' directories kept for their runs' applies; absent when that is off. */
  planWorkdirs?: PlanWorkdirs | undefined;
}

export interface JobRunnerDeps extends AgentDeps {
  agentId: string;
  session: () => string;
}

/** `stopped`: the agent's own stop ended the job (reported as agent_stopped). */
export type JobEnd = 'succeeded' | 'failed' | 'canceled' | 'not_started' | 'abandoned' | 'stopped';

export class JobRunner {
  readonly assignment: JobAssignment;
  readonly #deps: JobRunnerDeps;
  readonly #logger: Logger;
  #handle: TaskHandle | undefined;
  #interruptedAt: number | undefined;
  #forced = false;
  #abandoned = false;
  #killTimer: NodeJS.Timeout | undefined;
  #log: LogShipper | undefined;
  /** Someone asked to cancel the run: the job ends canceled even if the agent stops too. */
  #userSignalled = false;
  /** The agent is stopping in `grace` or `force` (shutdown.ts). */
  #agentStop: { action: StopAction; reason: string } | undefined;
  /** The sandbox has exited: nothing is left to interrupt or kill. */
  #sandboxDone = false;
  /** A cancel or force-cancel that came before the sandbox existed (while the engine was being prepared). */
  #earlySignal: SignalAction | undefined;
  readonly #canceledBeforeStart = Promise.withResolvers<'canceled'>();

  constructor(assignment: JobAssignment, deps: JobRunnerDeps) {
    this.assignment = assignment;
    this.#deps = deps;
    this.#logger = deps.logger.child({ job: assignment.job_id, run: assignment.run_id, kind: assignment.kind });
  }

  /** Cancel: interrupt once; force-cancel: kill the sandbox after the grace period. */
  async signal(action: SignalAction): Promise<void> {
    this.#userSignalled = true;
    const handle = this.#handle;
    if (!handle) {
      // Nothing to interrupt yet: run() will not start the sandbox (or, if
      // it is starting right now, interrupts it as soon as it exists).
      if (this.#earlySignal !== 'force_cancel') this.#earlySignal = action;
      this.#canceledBeforeStart.resolve('canceled');
      return;
    }
    await this.#interrupt(handle, action);
    if (action === 'cancel' || this.#forced) return;
    const remaining = Math.max(0, this.#deps.config.killGrace - (Date.now() - (this.#interruptedAt ?? Date.now())));
    this.#logger.warn({ killInMs: remaining }, 'force-cancel: the sandbox will be killed');
    this.#killAfter(handle, remaining);
  }

  /**
   * The agent is stopping (shutdown.ts): `grace` interrupts the job as a
   * cancel does (the engine stops at a safe point and saves state); `force`
   * kills its sandbox now. Unless the job still succeeds, it is reported
   * ended by the stop (agent_stopped), not canceled: nobody canceled the run.
   */
  async stopForAgent(action: StopAction, reason: string): Promise<void> {
    if (action === 'drain' || this.#sandboxDone || this.#agentStop?.action === 'force') return;
    this.#agentStop = { action, reason };
    // Not started yet: run() does not start it (or stops it as soon as it exists).
    if (!this.#handle) this.#canceledBeforeStart.resolve('canceled');
    else await this.#applyAgentStop(this.#handle);
  }

  async #applyAgentStop(handle: TaskHandle): Promise<void> {
    const { action, reason } = this.#agentStop!;
    const what = `agent ${this.#deps.config.name} is stopping (${reason})`;
    if (action === 'grace') {
      this.#log?.line(`Outpost: ${what}: interrupting the job; its sandbox is killed in ${this.#deps.config.graceShutdownTimeout / 1000} s if still running.`);
      await this.#interrupt(handle, 'agent stop');
      return;
    }
    this.#log?.line(`Outpost: ${what}: killing the job now.`);
    this.#logger.warn({ reason }, 'agent stop: killing the sandbox now');
    this.#killAfter(handle, 0);
  }

  /** One SIGINT to the operation, which forwards one to the engine; never a second. */
  async #interrupt(handle: TaskHandle, why: string): Promise<void> {
    if (this.#interruptedAt !== undefined) return;
    this.#interruptedAt = Date.now();
    this.#logger.info({ action: why }, 'interrupting the job');
    await this.#deps.driver.signal(handle, 'SIGINT');
  }

  /** Kills the whole sandbox after `ms` (an earlier scheduled kill is replaced). */
  #killAfter(handle: TaskHandle, ms: number): void {
    this.#forced = true;
    clearTimeout(this.#killTimer);
    this.#killTimer = setTimeout(() => void this.#deps.driver.stop(handle, 0), ms);
  }

  /**
   * The server no longer recognises our lease (a force-cancel, or the job
   * was handed elsewhere): stop as force-cancel does (interrupt, kill after
   * the grace period, so the engine may still clean up its own processes)
   * and report nothing.
   */
  async abandon(): Promise<void> {
    this.#abandoned = true;
    // Not started yet: run() does not start it; if the sandbox is being
    // created right now, run() delivers this as soon as it exists.
    await this.signal('force_cancel');
  }

  async run(): Promise<JobEnd> {
    const { assignment } = this;
    const deps = this.#deps;
    const log = (this.#log = new LogShipper({
      client: deps.client,
      session: deps.session(),
      jobId: assignment.job_id,
      leaseId: assignment.lease_id,
      startOffset: assignment.log_offset,
      logger: this.#logger,
      onDelivered: (bytes) => deps.metrics?.logBytesShipped(bytes),
      // Beside the job's directory, not in it: the sandbox must not see it, and destroy() removes the directory before the log is closed.
      spillFile: path.join(deps.config.dataDir, 'jobs', `${assignment.job_id}.log-spill`),
    }));
    try {
      await deps.client.startJob(deps.session(), assignment.job_id, assignment.lease_id);
    } catch (error) {
      this.#logger.error({ err: (error as Error).message }, 'could not start the job');
      await log.close(5_000);
      return 'abandoned';
    }
    log.line(`Outpost agent ${deps.config.name}: ${assignment.kind} job ${assignment.job_id}, driver ${deps.driver.name}`);
    const acquiring = deps.engines.acquire(assignment.engine, (line) => log.line(line)).catch((error: unknown) => error as Error);
    // A download can take minutes: a cancel must not wait for it.
    const lease = await Promise.race([acquiring, this.#canceledBeforeStart.promise]);
    if (lease === 'canceled') {
      // The download goes on in the background and fills the cache for later jobs.
      void acquiring.then((acquired) => (acquired instanceof Error ? undefined : acquired.release()));
      if (this.#abandoned) {
        await log.close(5_000);
        return 'abandoned';
      }
      if (this.#agentStop && this.#earlySignal === undefined) {
        log.line(`The agent stopped (${this.#agentStop.reason}) before the job operation started: nothing was run.`);
        await log.close();
        await this.#finish('failed', stoppedError(deps.config.name, this.#agentStop));
        return 'stopped';
      }
      this.#logger.info({ action: this.#earlySignal }, 'canceled before the job operation started');
      log.line('The job was canceled before it started: nothing was run.');
      await log.close();
      await this.#finish('canceled');
      return 'canceled';
    }
    if (lease instanceof Error) {
      const info = errorInfo(lease);
      log.line(`Error: ${info.message} [${info.code}]`);
      await log.close();
      await this.#finish('failed', info);
      return 'not_started';
    }
    let exit: ExitResult | undefined;
    let guard: MemoryGuard | undefined;
    const providers = deps.providers?.open(assignment.job_id, (line) => log.line(line));
    const workdir = path.join(deps.config.dataDir, 'jobs', assignment.job_id);
    try {
      const runtime = await runtimeFor(deps.driver, deps.config.dataDir);
      if (assignment.kind === 'apply') await deps.planWorkdirs?.handOver(assignment.run_id, workdir);
      const running = await deps.driver.start({
        jobId: assignment.job_id,
        agentId: deps.agentId,
        command: [process.execPath, runtime.entry],
        shared: [process.execPath, runtime.root, lease.path],
        workdir,
        env: {
          ...deps.baseEnv,
          ...runtime.env,
          OUTPOST_JOB_SERVER_URL: deps.config.url,
          OUTPOST_JOB_TOKEN: assignment.job_token,
          OUTPOST_JOB_WORKDIR: workdir,
          OUTPOST_JOB_ENGINE_PATH: lease.path,
          OUTPOST_JOB_MAX_ARCHIVE_MB: String(deps.config.maxArchiveMb),
          ...providerEnvironment(providers, deps.config),
        },
      });
      this.#handle = running.handle;
      guard = startMemoryGuard({ ...deps, logger: this.#logger }, running.handle, (line) => log.line(line), () => this.#interrupt(running.handle, 'memory soft limit'));
      await deps.handles.save(running.handle, assignment.lease_id).catch((error: unknown) => this.#logger.warn({ err: error }, 'could not persist the task handle'));
      // A cancel or an agent stop that arrived while the sandbox was being created.
      if (this.#earlySignal !== undefined) void this.signal(this.#earlySignal);
      if (this.#agentStop !== undefined) void this.#applyAgentStop(running.handle);
      running.output.on('data', (chunk: Buffer) => log.write(chunk));
      const drained = new Promise<void>((resolve) => running.output.once('end', resolve));
      exit = await deps.driver.wait(running.handle);
      this.#sandboxDone = true;
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    } catch (error) {
      const info = errorInfo(error);
      log.line(`Error: the ${deps.driver.name} driver could not run the job: ${info.message}`);
      await log.close();
      await this.#finish('failed', info);
      return 'not_started';
    } finally {
      this.#sandboxDone = true;
      guard?.stop();
      clearTimeout(this.#killTimer);
      lease.release();
      providers?.close();
      // Before the sandbox is destroyed with its directory: a plan that ended well leaves it for the apply.
      if (this.#handle && assignment.kind === 'plan' && exit?.code === jobExitCodes.succeeded && this.#interruptedAt === undefined) {
        await deps.planWorkdirs?.keep(assignment.run_id, workdir);
      }
      if (this.#handle) {
        await deps.driver.destroy(this.#handle).catch((error: unknown) => this.#logger.warn({ err: error }, 'cleanup failed'));
        await deps.handles.remove(this.#handle.jobId);
      }
    }
    const outcome = outcomeOf(exit, { forced: this.#forced, interrupted: this.#interruptedAt !== undefined });
    if (outcome === 'failed' && exit.oomKilled) log.line('Error: the job ran out of memory and was killed');
    // A job that succeeded despite the stop, or that someone canceled, is reported as such.
    const stop = !this.#userSignalled && !this.#abandoned && outcome !== 'succeeded' ? this.#agentStop : undefined;
    if (stop) log.line(`Outpost: the ${assignment.kind} was ended by its agent stopping (${stop.action}, ${stop.reason}).`);
    // The memory guard interrupted it, and no cancel or agent stop ended it first.
    const memory = !this.#userSignalled && !stop ? guard?.failure(outcome, exit) : undefined;
    if (memory) log.line(`Error: ${memory.message} [${memory.code}]`);
    await log.close();
    if (this.#abandoned) return 'abandoned';
    if (stop) {
      await this.#finish('failed', stoppedError(deps.config.name, stop));
      return 'stopped';
    }
    await this.#finish(memory ? 'failed' : outcome, memory ?? (outcome === 'failed' ? exitError(exit) : undefined));
    return memory ? 'failed' : outcome;
  }

  async #finish(status: 'succeeded' | 'failed' | 'canceled', error?: JobErrorInfo): Promise<void> {
    // A stopping agent must exit even if the server does not answer: the lease then lapses.
    const signal = this.#agentStop ? AbortSignal.timeout(30_000) : undefined;
    try {
      await this.#deps.client.finishJob(this.#deps.session(), this.assignment.job_id, { lease_id: this.assignment.lease_id, status, ...(error ? { error } : {}) }, signal);
      this.#logger.info({ status }, 'job finished');
    } catch (failure) {
      // A stale lease means the server already ended the job (force-cancel,
      // or it was handed to another agent): nothing left to report.
      this.#logger.warn({ err: (failure as Error).message, status }, 'could not report the job result');
    }
  }
}
