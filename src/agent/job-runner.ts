// Runs one claimed job: prepares the engine binary, starts the operation in
// a sandbox through the driver, streams its output as the run log, acts on
// cancel signals, and reports the outcome. Terraform-specific work stays in
// the operation; this file only knows processes, logs and the protocol.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { JobAssignment, JobErrorInfo, SignalAction } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { jobExitCodes } from '../protocol/statuses.ts';
import type { AgentConfig } from './config.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import type { Driver, ExitResult, TaskHandle } from './drivers/driver.ts';
import type { EngineCache } from './engines/engine-cache.ts';
import { prepareJobRuntime, type JobRuntime } from './job-runtime.ts';
import type { MirrorAccess, ProviderMirror } from './providers/provider-mirror.ts';
import { LogShipper } from './log-shipper.ts';
import type { TaskHandleStore } from './task-handles.ts';

const jobEntry = fileURLToPath(new URL('../job/entry.ts', import.meta.url));
/** Outpost's code and dependencies, from which the sandbox's runtime is curated. */
const appRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
/** One runtime copy per data dir and agent process; a failed copy is retried by the next job. */
const runtimes = new Map<string, Promise<JobRuntime>>();

/**
 * What the sandbox runs the operation from. A sandbox that isolates files
 * gets only the curated runtime, never the whole app directory (in a
 * checkout it holds the server's database and the admin token); one that
 * does not isolate sees everything anyway, so it runs from the app itself.
 */
function runtimeFor(driver: Driver, dataDir: string): Promise<JobRuntime> {
  if (!driver.capabilities().isolatesFiles) return Promise.resolve({ root: appRoot, entry: jobEntry });
  let runtime = runtimes.get(dataDir);
  if (!runtime) {
    runtime = prepareJobRuntime(appRoot, dataDir);
    runtimes.set(dataDir, runtime);
    runtime.catch(() => runtimes.delete(dataDir));
  }
  return runtime;
}

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
}

export interface JobRunnerDeps extends AgentDeps {
  agentId: string;
  session: () => string;
}

export type JobEnd = 'succeeded' | 'failed' | 'canceled' | 'not_started' | 'abandoned';

export class JobRunner {
  readonly assignment: JobAssignment;
  readonly #deps: JobRunnerDeps;
  readonly #logger: Logger;
  #handle: TaskHandle | undefined;
  #interruptedAt: number | undefined;
  #forced = false;
  #abandoned = false;
  #killTimer: NodeJS.Timeout | undefined;
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
    const handle = this.#handle;
    if (!handle) {
      // Nothing to interrupt yet: run() will not start the sandbox (or, if
      // it is starting right now, interrupts it as soon as it exists).
      if (this.#earlySignal !== 'force_cancel') this.#earlySignal = action;
      this.#canceledBeforeStart.resolve('canceled');
      return;
    }
    if (action === 'cancel' || this.#interruptedAt === undefined) {
      if (this.#interruptedAt === undefined && handle) {
        this.#interruptedAt = Date.now();
        this.#logger.info({ action }, 'interrupting the job');
        await this.#deps.driver.signal(handle, 'SIGINT');
      }
      if (action === 'cancel') return;
    }
    if (this.#forced || !handle) return;
    this.#forced = true;
    const remaining = Math.max(0, this.#deps.config.killGrace - (Date.now() - (this.#interruptedAt ?? Date.now())));
    this.#logger.warn({ killInMs: remaining }, 'force-cancel: the sandbox will be killed');
    this.#killTimer = setTimeout(() => void this.#deps.driver.stop(handle, 0), remaining);
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
    const log = new LogShipper({
      client: deps.client,
      session: deps.session(),
      jobId: assignment.job_id,
      leaseId: assignment.lease_id,
      startOffset: assignment.log_offset,
      logger: this.#logger,
    });
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
    const providers = deps.providers?.open(assignment.job_id, (line) => log.line(line));
    try {
      const runtime = await runtimeFor(deps.driver, deps.config.dataDir);
      const running = await deps.driver.start({
        jobId: assignment.job_id,
        agentId: deps.agentId,
        command: [process.execPath, runtime.entry],
        shared: [process.execPath, runtime.root, lease.path],
        workdir: path.join(deps.config.dataDir, 'jobs', assignment.job_id),
        env: {
          ...deps.baseEnv,
          OUTPOST_JOB_SERVER_URL: deps.config.url,
          OUTPOST_JOB_TOKEN: assignment.job_token,
          OUTPOST_JOB_WORKDIR: path.join(deps.config.dataDir, 'jobs', assignment.job_id),
          OUTPOST_JOB_ENGINE_PATH: lease.path,
          OUTPOST_JOB_MAX_ARCHIVE_MB: String(deps.config.maxArchiveMb),
          ...providerEnvironment(providers, deps.config),
        },
      });
      this.#handle = running.handle;
      await deps.handles.save(running.handle, assignment.lease_id).catch((error: unknown) => this.#logger.warn({ err: error }, 'could not persist the task handle'));
      // A cancel that arrived while the sandbox was being created.
      if (this.#earlySignal !== undefined) void this.signal(this.#earlySignal);
      running.output.on('data', (chunk: Buffer) => log.write(chunk));
      const drained = new Promise<void>((resolve) => running.output.once('end', resolve));
      exit = await deps.driver.wait(running.handle);
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    } catch (error) {
      const info = errorInfo(error);
      log.line(`Error: the ${deps.driver.name} driver could not run the job: ${info.message}`);
      await log.close();
      await this.#finish('failed', info);
      return 'not_started';
    } finally {
      clearTimeout(this.#killTimer);
      lease.release();
      providers?.close();
      if (this.#handle) {
        await deps.driver.destroy(this.#handle).catch((error: unknown) => this.#logger.warn({ err: error }, 'cleanup failed'));
        await deps.handles.remove(this.#handle.jobId);
      }
    }
    const outcome = this.#outcomeOf(exit);
    if (outcome === 'failed' && exit.oomKilled) log.line('Error: the job ran out of memory and was killed');
    await log.close();
    if (this.#abandoned) return 'abandoned';
    await this.#finish(outcome, outcome === 'failed' ? exitError(exit) : undefined);
    return outcome;
  }

  #outcomeOf(exit: ExitResult): 'succeeded' | 'failed' | 'canceled' {
    if (exit.code === jobExitCodes.succeeded) return 'succeeded';
    if (exit.code === jobExitCodes.canceled || this.#forced || (this.#interruptedAt !== undefined && exit.signal !== null)) return 'canceled';
    return 'failed';
  }

  async #finish(status: 'succeeded' | 'failed' | 'canceled', error?: JobErrorInfo): Promise<void> {
    try {
      await this.#deps.client.finishJob(this.#deps.session(), this.assignment.job_id, { lease_id: this.assignment.lease_id, status, ...(error ? { error } : {}) });
      this.#logger.info({ status }, 'job finished');
    } catch (failure) {
      // A stale lease means the server already ended the job (force-cancel,
      // or it was handed to another agent): nothing left to report.
      this.#logger.warn({ err: (failure as Error).message, status }, 'could not report the job result');
    }
  }
}

/** How the job's engine gets its providers: through the agent's mirror, or itself (with the configured registry hosts). */
function providerEnvironment(providers: MirrorAccess | undefined, config: AgentConfig): Record<string, string> {
  if (providers === undefined) {
    const services = config.providerRegistryServices;
    return services === undefined ? {} : { OUTPOST_JOB_PROVIDER_REGISTRY_SERVICES: JSON.stringify(services) };
  }
  return {
    OUTPOST_JOB_PROVIDER_MIRROR_URL: providers.url,
    OUTPOST_JOB_PROVIDER_MIRROR_CA: providers.caPem,
    // The mirror may be downloading a package while the engine waits for its answer.
    OUTPOST_JOB_PROVIDER_MIRROR_TIMEOUT: String(Math.ceil(config.downloadTimeout / 1000) + 60),
  };
}

function errorInfo(error: unknown): JobErrorInfo {
  if (error instanceof OutpostError) return { code: error.code, message: error.message };
  return { code: 'internal', message: (error as Error).message ?? String(error) };
}

function exitError(exit: ExitResult): JobErrorInfo {
  if (exit.oomKilled) return { code: 'out_of_memory', message: 'the job exceeded its memory limit and was killed (out of memory); raise the limit or reduce the configuration\'s memory use' };
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return { code: 'engine_failed', message: `the job operation ${how}` };
}
