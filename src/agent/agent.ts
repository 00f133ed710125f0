// The agent process: registers with the pool token, keeps one long-poll open
// for jobs and signals, heartbeats to keep leases alive, and runs up to
// `concurrency` jobs at once (one, then exit, in single mode).
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobAssignment, JobSignal } from '../protocol/agent-api.ts';
import { AuthError, isTransient } from './control-plane-client.ts';
import { JobRunner, type AgentDeps, type JobEnd } from './job-runner.ts';
import type { StopAction } from './shutdown-config.ts';
import type { PersistedTask } from './task-handles.ts';

export type { AgentDeps };

export const agentVersion = '0.1.0';

/** Where the agent is in its life, for /readyz: only `ready` takes work. */
export type AgentLifecycle = 'starting' | 'ready' | 'draining' | 'stopped';

export class AgentStoppedError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'AgentStoppedError';
    this.exitCode = exitCode;
  }
}

export class OutpostAgent {
  readonly #deps: AgentDeps;
  readonly #running = new Map<string, JobRunner>();
  readonly #stopping = new AbortController();
  /** Aborted once the agent is stopping and no job is left: ends a heartbeat in flight. */
  readonly #idleStop = new AbortController();
  /** How far the stop has gone (shutdown.ts drives it); undefined while running. */
  #stopAction: StopAction | undefined;
  readonly #handedBack: Promise<void>[] = [];
  #poll: AbortController | undefined;
  /** How many jobs the open poll asked for. */
  #pollFreeSlots = 0;
  #session = '';
  #agentId = '';
  #heartbeatMs = 10_000;
  #fatal: AgentStoppedError | undefined;
  #jobsStarted = 0;
  #singleResult: JobEnd | undefined;

  constructor(deps: AgentDeps) {
    this.#deps = deps;
  }

  /**
   * Stops taking work. `drain` waits for running jobs; `grace` interrupts
   * them; `force` kills them. Each job the stop ends is reported
   * (agent_stopped) and run() resolves once none is left.
   */
  stop(action: StopAction = 'drain', reason = 'asked to stop'): void {
    this.#stopAction = action;
    this.#stopping.abort();
    this.#poll?.abort();
    for (const runner of this.#running.values()) void runner.stopForAgent(action, reason);
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
  async run(): Promise<number> {
    const { config, logger, client } = this.#deps;
    if (!config.token) throw new AgentStoppedError('no pool token: set OUTPOST_AGENT_TOKEN (or SCALR_AGENT_TOKEN)', 2);
    const leftovers = await this.#removeLeftovers();
    try {
      const registered = await client.register(
        config.token,
        { name: config.name, version: agentVersion, driver: this.#deps.driver.name, concurrency: config.single ? 1 : config.concurrency, single: config.single },
        this.#stopping.signal,
      );
      this.#session = registered.session_token;
      this.#agentId = registered.agent_id;
      this.#heartbeatMs = registered.heartbeat_interval_ms;
      logger.info({ agent: registered.agent_id, pool: registered.pool_id, driver: this.#deps.driver.name, concurrency: config.concurrency, single: config.single }, 'registered');
      for (const task of leftovers) {
        await client.reportLost(this.#session, task.jobId, task.leaseId).then(
          () => logger.warn({ job: task.jobId }, 'reported a job the previous agent process was running as lost'),
          (error: unknown) => logger.info({ job: task.jobId, err: (error as Error).message }, 'the server had already moved on from a job of the previous agent process'),
        );
      }
    } catch (error) {
      if (error instanceof AuthError) throw new AgentStoppedError(`the control plane refused the pool token (${error.code}): ${error.message}`, 3);
      // Asked to stop while the server could not be reached: nothing was taken, nothing to hand back.
      if (this.#stopping.signal.aborted) {
        logger.info('stopped before the control plane answered the registration');
        return 0;
      }
      throw error;
    }
    const heartbeat = this.#heartbeatLoop();
    try {
      await this.#claimLoop();
    } finally {
      this.#poll?.abort();
      await Promise.allSettled([...this.#running.values()].map((runner) => this.#waitFor(runner)));
      this.#stopping.abort();
      this.#idleStop.abort();
      await heartbeat;
      await Promise.allSettled(this.#handedBack);
      if (!this.#fatal) await this.#leavePool();
    }
    if (this.#fatal) throw this.#fatal;
    if (config.single) {
      const ran = this.#singleResult !== 'not_started' && this.#singleResult !== 'abandoned' && this.#singleResult !== undefined;
      if (!ran) logger.error({ result: this.#singleResult ?? 'no job' }, 'single mode: the job could not run (see its run log); exiting 1');
      return ran ? 0 : 1;
    }
    return 0;
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

  /**
   * Sandboxes and job directories a previous agent process left behind (it
   * crashed or was killed): their jobs' leases lapse on the server, which
   * re-queues a plan and fails an apply; nothing of them may keep running.
   */
  async #removeLeftovers(): Promise<PersistedTask[]> {
    const { driver, handles, logger, config } = this.#deps;
    const left = await handles.list();
    const lost: PersistedTask[] = [];
    for (const handle of left) {
      const recovered = await driver.recover(handle).catch(() => undefined);
      if (recovered) continue;
      lost.push(handle);
      await driver.destroy(handle).catch((error: unknown) => logger.warn({ err: error, job: handle.jobId }, 'could not remove a leftover sandbox'));
      await handles.remove(handle.jobId);
      logger.warn({ job: handle.jobId, driver: handle.driver }, 'removed the sandbox of a job the previous agent process left running');
    }
    const orphans = await driver.removeOrphans(new Set(left.map((h) => h.jobId))).catch(() => 0);
    if (orphans > 0) logger.warn({ count: orphans }, 'removed sandboxes no job owns');
    const jobsDir = path.join(config.dataDir, 'jobs');
    for (const name of await readdir(jobsDir).catch(() => [] as string[])) {
      await rm(path.join(jobsDir, name), { recursive: true, force: true });
    }
    return lost;
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
      const free = this.#wantsWork() ? Math.max(0, this.#capacity() - this.#running.size) : 0;
      this.#poll = new AbortController();
      this.#pollFreeSlots = free;
      const pollStarted = performance.now();
      try {
        const response = await this.#deps.client.poll(this.#session, { free_slots: free, running: this.#runningJobs() }, this.#poll.signal);
        failures = 0;
        if (free > 0 && response.jobs.length > 0) this.#deps.metrics?.jobsClaimed(response.jobs.length, (performance.now() - pollStarted) / 1000);
        this.#applySignals(response.signals);
        for (const assignment of response.jobs) this.#startJob(assignment);
      } catch (error) {
        if (this.#poll.signal.aborted) continue;
        if (error instanceof AuthError) {
          this.#fatal = new AgentStoppedError(`the control plane revoked this agent (${error.code}): ${error.message}`, 3);
          break;
        }
        failures++;
        const delay = Math.min(15_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
        // An unreachable server was already reported once by the client.
        this.#deps.logger[isTransient(error) ? 'debug' : 'warn']({ err: (error as Error).message, retryInMs: Math.round(delay) }, 'poll failed');
        await sleep(delay, undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      }
    }
  }

  #runningJobs() {
    return [...this.#running.values()].map((runner) => ({ job_id: runner.assignment.job_id, lease_id: runner.assignment.lease_id }));
  }

  #applySignals(signals: JobSignal[]): void {
    for (const signal of signals) void this.#running.get(signal.job_id)?.signal(signal.action);
  }

  #startJob(assignment: JobAssignment): void {
    if (this.#stopAction !== undefined) {
      this.#handBack(assignment);
      return;
    }
    this.#jobsStarted++;
    const runner = new JobRunner(assignment, { ...this.#deps, agentId: this.#agentId, session: () => this.#session });
    this.#running.set(assignment.job_id, runner);
    this.#deps.metrics?.jobStarted();
    this.#deps.logger.info({ job: assignment.job_id, run: assignment.run_id, kind: assignment.kind }, 'job claimed');
    const done = runner
      .run()
      .catch((error: unknown) => {
        this.#deps.logger.error({ err: error, job: assignment.job_id }, 'job runner failed');
        return 'abandoned' as JobEnd;
      })
      .then((end) => {
        if (this.#deps.config.single) this.#singleResult = end;
        this.#deps.metrics?.jobFinished(end);
        this.#running.delete(assignment.job_id);
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

  #waitFor(runner: JobRunner): Promise<void> {
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
        const wait = failures === 0 ? this.#heartbeatMs : Math.min(this.#heartbeatMs, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
        await sleep(wait, undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      } else if (this.#running.size > 0) {
        // Draining: keep the leases of the jobs still running alive.
        await sleep(Math.min(this.#heartbeatMs, 1_000));
      }
      if (this.#fatal || (this.#stopping.signal.aborted && this.#running.size === 0)) break;
      try {
        const status = this.#stopping.signal.aborted ? 'draining' : this.#running.size > 0 ? 'busy' : 'idle';
        const response = await this.#deps.client.heartbeat(this.#session, { status, running: this.#runningJobs() }, Math.max(1_000, this.#heartbeatMs), this.#idleStop.signal);
        failures = 0;
        this.#applySignals(response.signals);
        for (const jobId of response.stale) {
          this.#deps.logger.warn({ job: jobId }, 'the server no longer recognises this job; stopping it');
          void this.#running.get(jobId)?.abandon();
        }
      } catch (error) {
        this.#deps.metrics?.heartbeatFailed();
        if (error instanceof AuthError) {
          this.#fatal = new AgentStoppedError(`the control plane revoked this agent (${error.code}): ${error.message}`, 3);
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

const runnerDone = new WeakMap<JobRunner, Promise<void>>();
