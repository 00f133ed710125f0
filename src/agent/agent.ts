// The agent process: registers with the pool token (or, after a restart with
// job containers still running, continues its previous registration and
// takes those jobs back), keeps one long-poll open for jobs and signals,
// heartbeats to keep leases alive, and runs up to `concurrency` jobs at once
// (one, then exit, in single mode).
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobAssignment, JobSignal, RegisterResponse } from '../protocol/agent-api.ts';
import { backoff } from '../protocol/backoff.ts';
import { AuthError, isTransient } from './control-plane-client.ts';
import { AgentStoppedError, agentExitCodes, singleModeExitCode, type AgentExitCode } from './exit-codes.ts';
import type { AgentDeps, Runner } from './agent-deps.ts';
import { JobRunner, type JobEnd } from './job-runner.ts';
import { removeLeftover, sortLeftovers, type RecoveredTask } from './leftover-tasks.ts';
import { RegistrationStore, type AgentIdentity } from './agent-registration.ts';
import { agentVersion } from './agent-version.ts';
import type { StopAction } from './shutdown-config.ts';
import { VcsRelay } from './vcs-relay.ts';
import type { PersistedTask } from './task-handles.ts';

export type { AgentDeps };

/** Where the agent is in its life, for /readyz: only `ready` takes work. */
export type AgentLifecycle = 'starting' | 'ready' | 'draining' | 'stopped';

/** A failed poll is retried from 1 s on, doubling to 15 s: a restarted server is found within seconds, a long outage costs little. */
const pollRetryBackoff = { baseMs: 500, maxMs: 15_000 } as const;
/** A failed heartbeat is retried sooner than the interval (the interval caps it), to reach a restarted server early in the window before it judges leases. */
const heartbeatRetryBaseMs = 500;
/** While draining, leases of the jobs still running are renewed at least this often. */
const drainingHeartbeatMs = 1_000;
/** The shortest a heartbeat may wait for its answer. */
const minHeartbeatTimeoutMs = 1_000;
/** How long a restarted agent keeps trying to reach the control plane to continue its session, as registration does. */
const resumeBudgetMs = 5 * 60_000;

export class OutpostAgent {
  readonly #deps: AgentDeps;
  readonly #registrations: RegistrationStore;
  readonly #running = new Map<string, Runner>();
  readonly #stopping = new AbortController();
  /** Aborted once the agent is stopping and no job is left: ends a heartbeat in flight. */
  readonly #idleStop = new AbortController();
  /** How far the stop has gone (shutdown.ts drives it) and why; undefined while running. */
  #stopAction: StopAction | undefined;
  #stopReason = '';
  readonly #handedBack: Promise<void>[] = [];
  #poll: AbortController | undefined;
  /** How many jobs the open poll asked for. */
  #pollFreeSlots = 0;
  #session = '';
  #agentId = '';
  #heartbeatMs = 10_000;
  #poolKind: RegisterResponse['pool_kind'] = 'runner';
  #fatal: AgentStoppedError | undefined;
  #jobsStarted = 0;
  #singleResult: JobEnd | undefined;
  #idle = false;

  constructor(deps: AgentDeps) {
    this.#deps = deps;
    this.#registrations = new RegistrationStore(deps.config.dataDir);
  }

  /**
   * Stops taking work. `drain` waits for running jobs; `grace` interrupts
   * them; `force` kills them. Each job the stop ends is reported
   * (agent_stopped) and run() resolves once none is left.
   */
  stop(action: StopAction = 'drain', reason = 'asked to stop'): void {
    this.#stopAction = action;
    this.#stopReason = reason;
    this.#stopping.abort();
    this.#poll?.abort();
    for (const runner of this.#running.values()) void runner.stopForAgent(action, reason);
  }

  /** Single mode with nothing to run: no job within the idle timeout, or the control plane says its job will never come (`gone`). */
  #singleModeIdleTimedOut(gone?: string): void {
    if (this.#jobsStarted > 0) return;
    this.#idle = true;
    const { singleJobId: job, singleIdleTimeout: idleTimeoutMs } = this.#deps.config;
    this.#deps.logger.warn({ idleTimeoutMs, job }, gone ? `single mode: ${gone}; exiting` : `single mode: ${job ? `job ${job} was not queued (another agent took it, or it ended)` : 'no job was queued'} within OUTPOST_AGENT_SINGLE_IDLE_TIMEOUT; exiting`);
    this.stop('drain', 'no job within the idle timeout');
  }

  runningJobIds(): string[] {
    return [...this.#running.keys()];
  }

  /** Read-only view for the health listener (health-server.ts). */
  status(): AgentLifecycle {
    if (this.#fatal) return 'stopped';
    // Stopping, or a single-mode agent that has its one job: no new work either way.
    if (!this.#wantsWork()) return 'draining';
    return this.#session === '' ? 'starting' : 'ready';
  }

  /** Runs until stopped; resolves with the process exit code. */
  async run(): Promise<AgentExitCode> {
    const { config, logger } = this.#deps;
    if (!config.token) throw new AgentStoppedError('no pool token: set OUTPOST_AGENT_TOKEN (or SCALR_AGENT_TOKEN), or OUTPOST_AGENT_TOKEN_FILE', agentExitCodes.invalidConfiguration);
    const leftovers = await sortLeftovers(this.#deps);
    let adopted: RecoveredTask[];
    try {
      const opened = await this.#registerOrResume({ url: config.url, poolToken: config.token, name: config.name }, leftovers.recovered);
      adopted = opened.adopted;
      await this.#reportLost([...leftovers.lost, ...opened.lost]);
    } catch (error) {
      // A container is never left running for a job nobody follows.
      for (const { task } of leftovers.recovered) await removeLeftover(this.#deps, task);
      if (error instanceof AuthError) throw new AgentStoppedError(`the control plane refused the pool token (${error.code}): ${error.message}`, agentExitCodes.tokenRefused);
      // Asked to stop while the server could not be reached: nothing was taken, nothing to hand back.
      if (this.#stopping.signal.aborted) {
        logger.info('stopped before the control plane answered the registration');
        return agentExitCodes.stopped;
      }
      throw error;
    }
    for (const recovered of adopted) {
      const runner = JobRunner.recovered(recovered.task, recovered.running, this.#runnerDeps());
      this.#follow(this.#deps.role?.recovered?.(runner) ?? runner);
    }
    // Heartbeats first: the leases a role takes over as it starts (a
    // controller's waiting pods, a worker's) are renewed from the first one.
    const heartbeat = this.#heartbeatLoop();
    const idle = config.single ? setTimeout(() => this.#singleModeIdleTimedOut(), config.singleIdleTimeout) : undefined;
    try {
      if (this.#poolKind === 'vcs') {
        this.#fatal = await new VcsRelay(this.#deps, this.#session).run(this.#stopping.signal);
      } else {
        await this.#deps.role?.start?.(this.#runnerDeps(), (runner) => this.#follow(runner));
        await this.#claimLoop();
      }
    } finally {
      clearTimeout(idle);
      this.#poll?.abort();
      await this.#deps.role?.stop?.();
      await Promise.allSettled([...this.#running.values()].map((runner) => this.#waitFor(runner)));
      this.#stopping.abort();
      this.#idleStop.abort();
      await heartbeat;
      await Promise.allSettled(this.#handedBack);
      if (!this.#fatal) await this.#leavePool();
      // Every job ended: nothing is left for a later process of this agent to take back.
      await this.#registrations.remove();
    }
    if (this.#fatal) throw this.#fatal;
    if (config.single) {
      const code = singleModeExitCode(this.#singleResult, this.#idle);
      logger[code === agentExitCodes.stopped ? 'info' : 'warn']({ result: this.#singleResult ?? 'no job', exitCode: code }, 'single mode: done');
      return code;
    }
    return agentExitCodes.stopped;
  }

  /**
   * Continues the previous process's registration when it left sandboxes
   * the driver recovered and the control plane still accepts its session
   * token (agent-registration.ts); otherwise registers anew. Returns the recovered jobs
   * the control plane still holds for this agent, and those it had to give
   * up: with a new registration, all of them (to report lost, as when the
   * driver cannot recover).
   */
  async #registerOrResume(identity: AgentIdentity, recovered: RecoveredTask[]): Promise<{ adopted: RecoveredTask[]; lost: PersistedTask[] }> {
    const { config, logger, client, driver } = this.#deps;
    const saved = recovered.length > 0 ? await this.#registrations.load(identity) : undefined;
    const resumed = saved ? await this.#resume(saved, recovered) : undefined;
    if (saved && resumed) {
      this.#useRegistration(saved);
      logger.info({ agent: saved.agent_id, pool: saved.pool_id, adopted: resumed.adopted.map(({ task }) => task.jobId) }, 'continued the registration of the previous agent process');
      for (const { task } of resumed.stale) {
        logger.warn({ job: task.jobId }, 'the server had already moved on from a job of the previous agent process');
        await removeLeftover(this.#deps, task);
      }
      return { adopted: resumed.adopted, lost: [] };
    }
    const registered = await client.register(
      identity.poolToken,
      { name: config.name, version: agentVersion, driver: driver.name, concurrency: config.single ? 1 : config.concurrency, single: config.single },
      this.#stopping.signal,
    );
    this.#useRegistration(registered);
    logger.info({ agent: registered.agent_id, pool: registered.pool_id, driver: driver.name, concurrency: config.concurrency, single: config.single }, 'registered');
    if (driver.capabilities().recover) await this.#registrations.save(identity, registered);
    for (const { task } of recovered) await removeLeftover(this.#deps, task);
    return { adopted: [], lost: recovered.map(({ task }) => task) };
  }

  /**
   * One heartbeat with the saved session token, listing the recovered jobs:
   * it extends the leases the control plane still holds for this agent and
   * names the others stale. Undefined when the token is no longer valid (the
   * agent was deregistered, or its pool token revoked).
   */
  async #resume(saved: RegisterResponse, recovered: RecoveredTask[]): Promise<{ adopted: RecoveredTask[]; stale: RecoveredTask[] } | undefined> {
    const running = recovered.map(({ task }) => ({ job_id: task.jobId, lease_id: task.leaseId }));
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await this.#deps.client.heartbeat(saved.session_token, { status: 'busy', running }, Math.max(minHeartbeatTimeoutMs, saved.heartbeat_interval_ms), this.#stopping.signal);
        const stale = new Set(answer.stale);
        return { adopted: recovered.filter(({ task }) => !stale.has(task.jobId)), stale: recovered.filter(({ task }) => stale.has(task.jobId)) };
      } catch (error) {
        if (!isTransient(error)) {
          this.#deps.logger.info({ err: (error as Error).message }, 'the control plane no longer accepts the previous registration; registering anew');
          return undefined;
        }
        if (this.#stopping.signal.aborted || Date.now() - started >= resumeBudgetMs) throw error;
        // Retried as a poll is: a restarted server is found within seconds.
        await sleep(backoff(attempt, pollRetryBackoff), undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      }
    }
  }

  #useRegistration(registration: RegisterResponse): void {
    this.#session = registration.session_token;
    this.#agentId = registration.agent_id;
    this.#heartbeatMs = registration.heartbeat_interval_ms;
    this.#poolKind = registration.pool_kind;
  }

  /** Jobs of the previous process that the agent does not take back: the control plane ends them now instead of when their lease lapses. */
  async #reportLost(tasks: PersistedTask[]): Promise<void> {
    const { client, logger } = this.#deps;
    for (const task of tasks) {
      await client.reportLost(this.#session, task.jobId, task.leaseId).then(
        () => logger.warn({ job: task.jobId }, 'reported a job the previous agent process was running as lost'),
        (error: unknown) => logger.info({ job: task.jobId, err: (error as Error).message }, 'the server had already moved on from a job of the previous agent process'),
      );
    }
  }

  /** OUTPOST_AGENT_DISCONNECT_ON_STOP: leave the pool's list now, or let the server mark the agent offline when it falls silent. */
  async #leavePool(): Promise<void> {
    const { client, logger, config } = this.#deps;
    if (!config.disconnectOnStop) {
      logger.info('not deregistering (OUTPOST_AGENT_DISCONNECT_ON_STOP=false): the server shows this agent offline once it misses heartbeats');
      return;
    }
    await client.deregister(this.#session).then(
      () => logger.info('deregistered from the pool'),
      (error: unknown) => logger.warn({ err: (error as Error).message }, 'could not deregister'),
    );
  }

  #capacity(): number {
    return this.#deps.config.single ? 1 : this.#deps.config.concurrency;
  }

  #wantsWork(): boolean {
    if (this.#stopping.signal.aborted || this.#fatal) return false;
    return !(this.#deps.config.single && this.#jobsStarted > 0);
  }

  async #claimLoop(): Promise<void> {
    let failures = 0;
    while (this.#wantsWork() || (this.#deps.config.single && this.#running.size > 0)) {
      if (this.#deps.config.single && this.#jobsStarted > 0) {
        await Promise.allSettled([...this.#running.values()].map((runner) => this.#waitFor(runner)));
        break;
      }
      const free = this.#wantsWork() && this.#deps.role?.claims !== false ? Math.max(0, this.#capacity() - this.#running.size) : 0;
      this.#poll = new AbortController();
      this.#pollFreeSlots = free;
      const pollStarted = performance.now();
      try {
        const response = await this.#deps.client.poll(this.#session, { free_slots: free, running: this.#runningJobs(), job_id: this.#deps.config.singleJobId }, this.#poll.signal);
        failures = 0;
        if (free > 0 && response.jobs.length > 0) this.#deps.metrics?.jobsClaimed(response.jobs.length, (performance.now() - pollStarted) / 1000);
        this.#applySignals(response.signals);
        for (const assignment of response.jobs) this.#startJob(assignment);
        if (response.job_gone !== undefined && this.#deps.config.single) this.#singleModeIdleTimedOut(response.job_gone);
      } catch (error) {
        if (this.#poll.signal.aborted) continue;
        if (error instanceof AuthError) {
          this.#fatal = new AgentStoppedError(`the control plane revoked this agent (${error.code}): ${error.message}`, agentExitCodes.tokenRefused);
          break;
        }
        failures++;
        const delay = backoff(failures, pollRetryBackoff);
        // An unreachable server was already reported once by the client.
        this.#deps.logger[isTransient(error) ? 'debug' : 'warn']({ err: (error as Error).message, retryInMs: Math.round(delay) }, 'poll failed');
        await sleep(delay, undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      }
    }
  }

  #runningJobs() {
    return [...this.#running.values()].map((runner) => ({ job_id: runner.job.job_id, lease_id: runner.job.lease_id }));
  }

  #applySignals(signals: JobSignal[]): void {
    for (const signal of signals) void this.#running.get(signal.job_id)?.signal(signal.action);
  }

  #runnerDeps() {
    return { ...this.#deps, agentId: this.#agentId, session: () => this.#session };
  }

  #startJob(assignment: JobAssignment): void {
    if (this.#stopAction !== undefined) {
      this.#handBack(assignment);
      return;
    }
    this.#deps.logger.info({ job: assignment.job_id, run: assignment.run_id, kind: assignment.kind }, 'job claimed');
    const deps = this.#runnerDeps();
    this.#follow(this.#deps.role?.runnerFor?.(assignment, deps) ?? JobRunner.claimed(assignment, deps));
  }

  /** Runs a job to its end, counting it against this agent's slots meanwhile. */
  #follow(runner: Runner): void {
    const { job } = runner;
    this.#jobsStarted++;
    this.#running.set(job.job_id, runner);
    this.#deps.metrics?.jobStarted();
    // A job taken back after a restart while the agent was already asked to stop.
    if (this.#stopAction !== undefined) void runner.stopForAgent(this.#stopAction, this.#stopReason);
    const done = runner
      .run()
      .catch((error: unknown) => {
        this.#deps.logger.error({ err: error, job: job.job_id }, 'job runner failed');
        return 'abandoned' as JobEnd;
      })
      .then((end) => {
        if (this.#deps.config.single) this.#singleResult = end;
        this.#deps.metrics?.jobFinished(end);
        this.#running.delete(job.job_id);
        // A poll that asked for no slots cannot get this slot's work: ask
        // again. One that asked for slots is left open: the server may be
        // claiming jobs for it right now, and aborting it would lose them
        // (leased to this agent, never started, until the lease expires).
        // It returns as soon as it gets work; the next poll asks for every free slot.
        if (this.#pollFreeSlots === 0) this.#poll?.abort();
      });
    runnerDone.set(runner, done);
  }

  /**
   * A job claimed by a poll answered just as the agent began to stop: it has
   * not started, and a job reported lost before it started is queued again
   * at once (even an apply), for another agent.
   */
  #handBack(assignment: JobAssignment): void {
    const { client, logger } = this.#deps;
    const job = assignment.job_id;
    this.#handedBack.push(
      client.reportLost(this.#session, job, assignment.lease_id).then(
        () => logger.info({ job, run: assignment.run_id }, 'stopping: handed back a job claimed as the stop began'),
        (error: unknown) => logger.warn({ job, err: (error as Error).message }, 'stopping: could not hand back a job claimed as the stop began; its lease will lapse'),
      ),
    );
  }

  #waitFor(runner: Runner): Promise<void> {
    return runnerDone.get(runner) ?? Promise.resolve();
  }

  /**
   * A failed heartbeat never gives up a job: the server judges leases only
   * once it has been up for a lease timeout, so heartbeats that resume when
   * it answers again keep every lease. Failures are retried sooner than the
   * interval (jittered), to reach a restarted server early in that window.
   */
  async #heartbeatLoop(): Promise<void> {
    let failures = 0;
    for (;;) {
      if (!this.#stopping.signal.aborted) {
        const wait = failures === 0 ? this.#heartbeatMs : backoff(failures, { baseMs: heartbeatRetryBaseMs, maxMs: this.#heartbeatMs });
        await sleep(wait, undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      } else if (this.#running.size > 0) {
        // Draining: keep the leases of the jobs still running alive.
        await sleep(Math.min(this.#heartbeatMs, drainingHeartbeatMs));
      }
      if (this.#fatal || (this.#stopping.signal.aborted && this.#running.size === 0)) break;
      try {
        const status = this.#stopping.signal.aborted || this.#deps.role?.draining?.() ? 'draining' : this.#running.size > 0 ? 'busy' : 'idle';
        const response = await this.#deps.client.heartbeat(this.#session, { status, running: this.#runningJobs() }, Math.max(minHeartbeatTimeoutMs, this.#heartbeatMs), this.#idleStop.signal);
        failures = 0;
        this.#applySignals(response.signals);
        for (const jobId of response.stale) {
          this.#deps.logger.warn({ job: jobId }, 'the server no longer recognises this job; stopping it');
          void this.#running.get(jobId)?.abandon();
        }
      } catch (error) {
        this.#deps.metrics?.heartbeatFailed();
        if (error instanceof AuthError) {
          this.#fatal = new AgentStoppedError(`the control plane revoked this agent (${error.code}): ${error.message}`, agentExitCodes.tokenRefused);
          for (const runner of this.#running.values()) void runner.abandon();
          this.#poll?.abort();
          break;
        }
        failures++;
        this.#deps.logger[isTransient(error) ? 'debug' : 'warn']({ err: (error as Error).message }, 'heartbeat failed');
      }
    }
  }
}

const runnerDone = new WeakMap<Runner, Promise<void>>();
