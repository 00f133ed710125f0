// What the agent does when asked to stop (SIGTERM, SIGINT, SIGHUP), as a
// small state machine (docs/reliability.md, "Agent shutdown"):
//
//   running ─signal─▶ <OUTPOST_AGENT_WORKER_ON_STOP_ACTION>
//   drain ─(drain timeout, or a signal)─▶ grace ─(grace timeout, or a signal)─▶ force ─(a signal)─▶ exit 130
//
// drain: no new jobs, running ones finish. grace: running jobs are
// interrupted (the engine stops at a safe point and saves state). force:
// their sandboxes are killed. The agent itself (agent.ts) reports each job
// the stop ended and exits 0 once none is left; only a signal after `force`
// exits at once, without reporting, because whoever sends it will not wait.
import type { Logger } from 'pino';
import { agentExitCodes } from './exit-codes.ts';
import type { StopAction } from './shutdown-config.ts';

/** The part of the agent the stop drives. */
export interface StoppableAgent {
  stop(action: StopAction, reason: string): void;
  /** The jobs the agent is running now, for the log. */
  runningJobIds(): string[];
}

export interface ShutdownTimeouts {
  /** The first step. */
  readonly action: StopAction;
  readonly drainTimeoutMs: number;
  readonly graceTimeoutMs: number;
}

const nextStep: Readonly<Record<StopAction, StopAction | 'exit'>> = { drain: 'grace', grace: 'force', force: 'exit' };

export class AgentShutdown {
  readonly #agent: StoppableAgent;
  readonly #timeouts: ShutdownTimeouts;
  readonly #logger: Logger;
  readonly #exit: (code: number) => void;
  #step: StopAction | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(agent: StoppableAgent, timeouts: ShutdownTimeouts, logger: Logger, exit: (code: number) => void) {
    this.#agent = agent;
    this.#timeouts = timeouts;
    this.#logger = logger;
    this.#exit = exit;
  }

  get step(): StopAction | undefined {
    return this.#step;
  }

  /** The first signal starts the configured step; each later one moves one step on. */
  onSignal(signal: NodeJS.Signals): void {
    if (this.#step === undefined) {
      this.#enter(this.#timeouts.action, `received ${signal}`);
      return;
    }
    const next = nextStep[this.#step];
    if (next === 'exit') {
      this.#logger.warn({ signal, jobs: this.#agent.runningJobIds() }, 'stopping now (exit 130), without reporting the jobs still being killed: their leases lapse on the server');
      this.#exit(agentExitCodes.signalAfterForce);
      return;
    }
    this.#enter(next, `received ${signal} again`);
  }

  /** The agent has exited: no timer may fire after that. */
  dispose(): void {
    clearTimeout(this.#timer);
  }

  #enter(step: StopAction, reason: string): void {
    clearTimeout(this.#timer);
    this.#step = step;
    const jobs = this.#agent.runningJobIds();
    const { drainTimeoutMs, graceTimeoutMs } = this.#timeouts;
    const next = nextStep[step];
    const later = next === 'exit' ? 'signal again to exit at once (130) without reporting' : `signal again to ${next}`;
    if (step === 'drain') {
      this.#logger.info({ mode: step, reason, jobs, drainTimeoutMs, graceTimeoutMs }, `stopping (drain): no new jobs; running jobs may finish for ${seconds(drainTimeoutMs)}, then they are interrupted (${later})`);
      this.#after(drainTimeoutMs, 'grace', `the drain timeout of ${seconds(drainTimeoutMs)} passed`);
    } else if (step === 'grace') {
      this.#logger[jobs.length > 0 ? 'warn' : 'info']({ mode: step, reason, jobs, graceTimeoutMs }, `stopping (grace): no new jobs; interrupting running jobs, their sandboxes are killed in ${seconds(graceTimeoutMs)} if still running (${later})`);
      this.#after(graceTimeoutMs, 'force', `the grace timeout of ${seconds(graceTimeoutMs)} passed`);
    } else {
      this.#logger[jobs.length > 0 ? 'warn' : 'info']({ mode: step, reason, jobs }, `stopping (force): killing the sandboxes of running jobs now (${later})`);
    }
    this.#agent.stop(step, reason);
  }

  #after(ms: number, step: StopAction, reason: string): void {
    this.#timer = setTimeout(() => {
      if (this.#agent.runningJobIds().length === 0) return;
      this.#enter(step, reason);
    }, ms);
    // Once the last job is done the agent exits; a pending escalation must not hold it.
    this.#timer.unref();
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
