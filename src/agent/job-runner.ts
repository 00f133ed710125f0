// Runs one job, as phases. A claimed job: announce the start, acquire the
// engine, start the sandbox, supervise it, end. A job whose sandbox a
// previous agent process left and the driver recovered: adopt it (the
// control plane must still hold its lease), supervise it, end.
//
// Whatever stops a job on the way (someone's cancel, the agent's own stop,
// the memory guard, the control plane letting go of the lease) is one
// StopCause, set in one place (#stopBecause); the end is decided from it and
// the sandbox's exit (job-end.ts) and told in one place (#end): the log's
// last lines, the log closed, the report sent. Terraform-specific work stays
// in the operation; this file only knows processes, logs and the protocol.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { JobAssignment, SignalAction } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { jobExitCodes } from '../protocol/statuses.ts';
import type { JobRunnerDeps, Runner, RunnerJob } from './agent-deps.ts';
import type { ExitResult, RunningTask } from './drivers/driver.ts';
import type { EngineLease } from './engines/engine-cache.ts';
import { decideEnd, errorInfo, interrupts, replaces, type EndReport, type JobEnd, type JobEnding, type StopCause } from './job-end.ts';
import { JobLog } from './job-log.ts';
import { runtimeFor } from './job-runtime.ts';
import { LogShipper } from './log-shipper.ts';
import { startMemoryGuard } from './memory-guard.ts';
import { providerEnvironment, type MirrorAccess } from './providers/provider-mirror.ts';
import { SandboxControl } from './sandbox-control.ts';
import type { StopAction } from './shutdown-config.ts';
import type { PersistedTask, RecoverableTask } from './task-handles.ts';

export type { JobEnd };
export type { AgentDeps, JobRunnerDeps, RunnerJob } from './agent-deps.ts';

type JobStart = { readonly kind: 'claimed'; readonly assignment: JobAssignment } | { readonly kind: 'recovered'; readonly task: RecoverableTask; readonly running: RunningTask };

/** A job the control plane has let go of: its log is not waited for long, nothing more of it will be looked at. */
const abandonedLogCloseMs = 5_000;
/** The sandbox's last output may arrive a little after its exit is known. */
const outputDrainMs = 2_000;
/** A recovered sandbox's output is its whole log read again, which takes a while for a large one (about a second per 100 MiB). */
const replayDrainMs = 120_000;
/** A stopping agent must exit even if the control plane does not answer its report: the lease then lapses. */
const stoppingReportTimeoutMs = 30_000;

export class JobRunner implements Runner {
  readonly job: RunnerJob;
  readonly #deps: JobRunnerDeps;
  readonly #logger: Logger;
  readonly #start: JobStart;
  readonly #sandbox: SandboxControl;
  #stop: StopCause | undefined;
  /** Resolves once anything stops the job: one still preparing its engine then never starts. */
  readonly #stopped = Promise.withResolvers<'stopped'>();
  /** Only bounds how long the end's report may wait; it decides nothing about the outcome. */
  #agentStopping = false;
  #log: JobLog | undefined;
  /** What is persisted while the sandbox exists; undefined before and after. */
  #task: PersistedTask | undefined;
  #sandboxStarted = false;
  #persisting: Promise<void> = Promise.resolve();

  private constructor(job: RunnerJob, start: JobStart, deps: JobRunnerDeps) {
    this.job = job;
    this.#start = start;
    this.#deps = deps;
    this.#logger = deps.logger.child({ job: job.job_id, run: job.run_id, kind: job.kind });
    this.#sandbox = new SandboxControl(deps.driver, this.#logger);
  }

  /** A job the agent just claimed. */
  static claimed(assignment: JobAssignment, deps: JobRunnerDeps): JobRunner {
    return new JobRunner(assignment, { kind: 'claimed', assignment }, deps);
  }

  /** A job whose sandbox a previous agent process left running and the driver recovered. */
  static recovered(task: RecoverableTask, running: RunningTask, deps: JobRunnerDeps): JobRunner {
    const job = { job_id: task.jobId, lease_id: task.leaseId, run_id: task.runId, kind: task.jobKind };
    return new JobRunner(job, { kind: 'recovered', task, running }, deps);
  }

  /** Cancel: interrupt once; force-cancel: also kill the sandbox after the kill grace. */
  async signal(action: SignalAction): Promise<void> {
    await this.#stopBecause({ kind: 'canceled', by: action });
  }

  /**
   * The agent is stopping (shutdown.ts): `grace` interrupts the job as a
   * cancel does; `force` kills its sandbox now. Unless the job still
   * succeeds, it is reported ended by the stop (agent_stopped), not
   * canceled: nobody canceled the run.
   */
  async stopForAgent(action: StopAction, reason: string): Promise<void> {
    if (action === 'drain' || this.#sandbox.hasExited) return;
    this.#agentStopping = true;
    await this.#stopBecause({ kind: 'agent-stop', action, reason });
  }

  /**
   * The control plane no longer recognises the lease (a force-cancel, the
   * job handed elsewhere, the agent revoked): stop as a force-cancel does
   * (interrupt, kill after the grace period, so the engine may still stop
   * its own processes) and report nothing.
   */
  async abandon(): Promise<void> {
    await this.#stopBecause({ kind: 'abandoned' });
  }

  /** Whether the driver was ever asked to start the job's sandbox (or recovered one): before that, nothing of the job ran. */
  get sandboxStarted(): boolean {
    return this.#sandboxStarted;
  }

  run(): Promise<JobEnd> {
    return this.#start.kind === 'claimed' ? this.#runClaimed(this.#start.assignment) : this.#runRecovered(this.#start.task, this.#start.running);
  }

  async #runClaimed(assignment: JobAssignment): Promise<JobEnd> {
    this.#log = JobLog.starting(this.#shipper(assignment.log_offset), assignment.log_offset, () => this.#persist());
    if (!(await this.#announceStart())) return this.#end({ kind: 'not-run', stop: { kind: 'abandoned' } });
    this.#log.line(`Outpost agent ${this.#deps.config.name}: ${assignment.kind} job ${assignment.job_id}, driver ${this.#deps.driver.name}`);
    const engine = await this.#acquireEngine(assignment);
    if (!('path' in engine)) return this.#end(engine);
    const providers = this.#deps.providers?.open(assignment.job_id, (line) => this.#log!.line(line));
    let ending: JobEnding;
    try {
      const running = await this.#startSandbox(assignment, engine, providers);
      const exit = await this.#superviseThenRemove(running, outputDrainMs);
      ending = { kind: 'exited', exit, stop: this.#stop };
    } catch (error) {
      await this.#removeSandbox(undefined);
      const info = errorInfo(error);
      ending = { kind: 'not-started', error: info, line: `Error: the ${this.#deps.driver.name} driver could not run the job: ${info.message}` };
    } finally {
      engine.release();
      providers?.close();
    }
    return this.#end(ending);
  }

  async #runRecovered(task: RecoverableTask, running: RunningTask): Promise<JobEnd> {
    this.#sandboxStarted = true;
    this.#task = task;
    this.#stop = task.stop;
    // A stop the previous process began goes on being reported; its interrupt was sent already.
    this.#sandbox.attach(task, interrupts(task.stop));
    const held = await this.#heldLogSize();
    if (held === undefined) {
      this.#logger.warn('the control plane no longer holds the lease of a job the previous agent process ran; removing its sandbox');
      await this.#removeSandbox(undefined);
      return this.#end({ kind: 'not-run', stop: { kind: 'abandoned' } });
    }
    this.#log = JobLog.resuming(this.#shipper(held), task.log, held, () => this.#persist());
    this.#log.lineAtLineStart(`Outpost agent ${this.#deps.config.name}: the agent restarted and took this ${task.jobKind} job back; its sandbox ran on meanwhile.`);
    this.#logger.info({ heldLogBytes: held }, 'took back a job the previous agent process was running');
    let ending: JobEnding;
    try {
      const exit = await this.#superviseThenRemove(running, replayDrainMs);
      ending = { kind: 'exited', exit, stop: this.#stop };
    } catch (error) {
      const info = errorInfo(error);
      ending = { kind: 'not-started', error: info, line: `Error: the ${this.#deps.driver.name} driver could not follow the job: ${info.message}` };
    }
    return this.#end(ending);
  }

  /** Whether the control plane accepted the job's start (else it no longer holds the lease). */
  async #announceStart(): Promise<boolean> {
    try {
      await this.#deps.client.startJob(this.#deps.session(), this.job.job_id, this.job.lease_id);
      return true;
    } catch (error) {
      this.#logger.error({ err: (error as Error).message }, 'could not start the job');
      return false;
    }
  }

  /** The engine binary, or how the job ends without it. A download can take minutes: a stop does not wait for it. */
  async #acquireEngine(assignment: JobAssignment): Promise<EngineLease | JobEnding> {
    const acquiring = this.#deps.engines.acquire(assignment.engine, (line) => this.#log!.line(line)).catch((error: unknown) => error as Error);
    const first = await Promise.race([acquiring, this.#stopped.promise]);
    if (first === 'stopped') {
      // The download goes on in the background and fills the cache for later jobs.
      void acquiring.then((acquired) => (acquired instanceof Error ? undefined : acquired.release()));
      const stop = this.#stop!;
      this.#logger.info({ stop: stop.kind }, 'stopped before the job operation started');
      // The memory guard only watches a running sandbox: it cannot have stopped this one.
      if (stop.kind === 'memory-limit') throw new OutpostError('internal', 'the memory guard stopped a job that has no sandbox');
      return { kind: 'not-run', stop };
    }
    if (first instanceof Error) {
      const info = errorInfo(first);
      return { kind: 'not-started', error: info, line: `Error: ${info.message} [${info.code}]` };
    }
    return first;
  }

  async #startSandbox(assignment: JobAssignment, engine: EngineLease, providers: MirrorAccess | undefined): Promise<RunningTask> {
    const { config, driver, planWorkdirs } = this.#deps;
    const workdir = path.join(config.dataDir, 'jobs', assignment.job_id);
    const runtime = await runtimeFor(driver, config.dataDir);
    if (assignment.kind === 'apply') await planWorkdirs?.handOver(assignment.run_id, workdir);
    this.#sandboxStarted = true;
    const running = await driver.start({
      jobId: assignment.job_id,
      agentId: this.#deps.agentId,
      command: [process.execPath, runtime.entry],
      shared: [process.execPath, runtime.root, engine.path],
      workdir,
      env: {
        ...this.#deps.baseEnv,
        ...runtime.env,
        OUTPOST_JOB_SERVER_URL: config.url,
        OUTPOST_JOB_TOKEN: assignment.job_token,
        OUTPOST_JOB_WORKDIR: workdir,
        OUTPOST_JOB_ENGINE_PATH: engine.path,
        OUTPOST_JOB_MAX_ARCHIVE_MB: String(config.maxArchiveMb),
        ...providerEnvironment(providers, config),
      },
    });
    this.#task = { ...running.handle, leaseId: assignment.lease_id, runId: assignment.run_id, jobKind: assignment.kind };
    this.#persist();
    await this.#persisting;
    // A cancel or an agent stop that came while the sandbox was being created is acted on now.
    this.#sandbox.attach(running.handle);
    return running;
  }

  /** Ships the sandbox's output until it exits (and its output ends, within `drainMs`), with the memory guard watching; then removes the sandbox. */
  async #superviseThenRemove(running: RunningTask, drainMs: number): Promise<ExitResult> {
    const { driver } = this.#deps;
    const log = this.#log!;
    let exit: ExitResult | undefined;
    const guard = startMemoryGuard({ ...this.#deps, logger: this.#logger }, running.handle, (line) => log.line(line), (error) => this.#stopBecause({ kind: 'memory-limit', error }));
    try {
      const drained = new Promise<void>((resolve) => running.output.once('end', resolve));
      running.output.on('data', (chunk: Buffer) => log.sandboxOutput(chunk));
      exit = await driver.wait(running.handle);
      this.#sandbox.exited();
      await Promise.race([drained, sleep(drainMs, undefined, { ref: false })]);
      log.outputEnded();
      return exit;
    } finally {
      this.#sandbox.exited();
      guard?.stop();
      await this.#removeSandbox(exit);
    }
  }

  /** Destroys the sandbox and forgets its task; a plan that ended well first leaves its directory for the apply. */
  async #removeSandbox(exit: ExitResult | undefined): Promise<void> {
    const task = this.#task;
    if (!task) return;
    this.#task = undefined;
    this.#sandbox.exited();
    const { driver, handles, planWorkdirs } = this.#deps;
    if (this.job.kind === 'plan' && exit?.code === jobExitCodes.succeeded && this.#stop === undefined) await planWorkdirs?.keep(this.job.run_id, task.workdir);
    await driver.destroy(task).catch((error: unknown) => this.#logger.warn({ err: error }, 'cleanup failed'));
    await this.#persisting;
    await handles.remove(task.jobId);
  }

  /**
   * The one place a stop cause is set: a stronger one replaces a weaker one
   * (job-end.ts), and each acts on the sandbox as it comes, whichever is
   * reported in the end.
   */
  async #stopBecause(cause: StopCause): Promise<void> {
    if (replaces(cause, this.#stop)) {
      this.#stop = cause;
      this.#persist();
    }
    this.#stopped.resolve('stopped');
    const sandbox = this.#sandbox;
    const { config } = this.#deps;
    switch (cause.kind) {
      case 'memory-limit':
        return sandbox.whenRunning((handle) => sandbox.interrupt(handle, 'memory soft limit'));
      case 'canceled':
      case 'abandoned':
        return sandbox.whenRunning(async (handle) => {
          const forced = cause.kind === 'abandoned' || cause.by === 'force_cancel';
          await sandbox.interrupt(handle, cause.kind === 'abandoned' ? 'abandoned' : cause.by);
          const killInMs = forced ? sandbox.killAfterInterrupt(handle, config.killGrace) : undefined;
          if (killInMs !== undefined) this.#logger.warn({ killInMs }, 'force-cancel: the sandbox will be killed');
        });
      case 'agent-stop':
        return sandbox.whenRunning(async (handle) => {
          const what = `agent ${config.name} is stopping (${cause.reason})`;
          if (cause.action === 'grace') {
            this.#log?.line(`Outpost: ${what}: interrupting the job; its sandbox is killed in ${config.graceShutdownTimeout / 1000} s if still running.`);
            await sandbox.interrupt(handle, 'agent stop');
            return;
          }
          this.#log?.line(`Outpost: ${what}: killing the job now.`);
          this.#logger.warn({ reason: cause.reason }, 'agent stop: killing the sandbox now');
          sandbox.killNow(handle);
        });
    }
  }

  /** The one end: the log's last lines, the log closed, the report sent. */
  async #end(ending: JobEnding): Promise<JobEnd> {
    const report = decideEnd(ending, { agentName: this.#deps.config.name, kind: this.job.kind });
    for (const line of report.lines) this.#log?.line(line);
    await this.#log?.close(report.finish ? undefined : abandonedLogCloseMs);
    if (report.finish) await this.#report(report.finish);
    return report.end;
  }

  async #report(finish: NonNullable<EndReport['finish']>): Promise<void> {
    const signal = this.#agentStopping ? AbortSignal.timeout(stoppingReportTimeoutMs) : undefined;
    try {
      await this.#deps.client.finishJob(this.#deps.session(), this.job.job_id, { lease_id: this.job.lease_id, ...finish }, signal);
      this.#logger.info({ status: finish.status }, 'job finished');
    } catch (failure) {
      // A stale lease means the server already ended the job (force-cancel,
      // or it was handed to another agent): nothing left to report.
      this.#logger.warn({ err: (failure as Error).message, status: finish.status }, 'could not report the job result');
    }
  }

  /** The size of the job's log the control plane holds, or undefined once it no longer holds the lease. */
  async #heldLogSize(): Promise<number | undefined> {
    try {
      return await this.#deps.client.logSize(this.#deps.session(), this.job.job_id, this.job.lease_id);
    } catch (error) {
      this.#logger.info({ err: (error as Error).message }, 'the control plane did not give the job back');
      return undefined;
    }
  }

  #shipper(startOffset: number): LogShipper {
    const deps = this.#deps;
    return new LogShipper({
      client: deps.client,
      session: deps.session(),
      jobId: this.job.job_id,
      leaseId: this.job.lease_id,
      startOffset,
      logger: this.#logger,
      onDelivered: (bytes) => deps.metrics?.logBytesShipped(bytes),
      // Beside the job's directory, not in it: the sandbox must not see it, and destroy() removes the directory before the log is closed.
      spillFile: path.join(deps.config.dataDir, 'jobs', `${this.job.job_id}.log-spill`),
    });
  }

  /** Saves the task as it is now (its log's ledger, its stop cause), after any save under way. */
  #persist(): void {
    const task = this.#task;
    if (!task) return;
    const record: PersistedTask = { ...task, log: this.#log?.ledger ?? task.log, ...(this.#stop ? { stop: this.#stop } : {}) };
    this.#persisting = this.#persisting
      .then(() => this.#deps.handles.save(record))
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'could not persist the task handle'));
  }
}
