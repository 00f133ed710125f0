// How a job's end is decided and told: from why it was stopped (if anything
// stopped it) and how its sandbox exited, the lines the agent adds to the
// run log, the report it sends the control plane, and what it counts. Pure,
// so every combination is unit-tested (job-end.test.ts). The operation's own
// report (sent with the job token) names the cause when it has one; these
// describe what only the agent sees: the exit, a kill, a memory kill, the
// memory guard, the agent's own stop.
import type { JobErrorInfo, SignalAction } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { jobExitCodes, type JobKind } from '../protocol/statuses.ts';
import type { ExitResult } from './drivers/driver.ts';

/**
 * Why a job is being stopped before its sandbox ends on its own. A job has at
 * most one: a stronger cause replaces a weaker one (see `replaces`). It also
 * says what was done to the sandbox: every cause but the agent's `force`
 * interrupts it once; a force-cancel, an abandon and the agent's `force`
 * kill it. Plain data: it is persisted with the task (task-handles.ts), so
 * an agent that re-attaches to the sandbox after a restart reports it alike.
 */
export type StopCause =
  /** The memory guard reached the soft limit; `error` is how the job fails unless the kernel killed it for memory. */
  | { readonly kind: 'memory-limit'; readonly error: JobErrorInfo }
  /** The agent itself is stopping (shutdown.ts): `grace` interrupts, `force` kills. */
  | { readonly kind: 'agent-stop'; readonly action: 'grace' | 'force'; readonly reason: string }
  /** Someone canceled the run. */
  | { readonly kind: 'canceled'; readonly by: SignalAction }
  /** The control plane no longer recognises the lease (force-cancel, handed elsewhere, agent revoked): nothing is reported. */
  | { readonly kind: 'abandoned' };

/** Which cause wins when several come: someone's cancel over the agent's stop, and nothing over an abandon. */
const strength: Readonly<Record<StopCause['kind'], number>> = { 'memory-limit': 1, 'agent-stop': 2, canceled: 3, abandoned: 4 };

/** Whether `next` takes the place of `current`: a stronger cause, or the same one escalated (grace → force, cancel → force-cancel). */
export function replaces(next: StopCause, current: StopCause | undefined): boolean {
  if (current === undefined || strength[next.kind] > strength[current.kind]) return true;
  if (next.kind === 'agent-stop' && current.kind === 'agent-stop') return next.action === 'force' && current.action === 'grace';
  if (next.kind === 'canceled' && current.kind === 'canceled') return next.by === 'force_cancel' && current.by === 'cancel';
  return false;
}

/** A cause whose stop kills the sandbox (now or after a grace period). */
export function kills(cause: StopCause | undefined): boolean {
  return cause?.kind === 'abandoned' || (cause?.kind === 'canceled' && cause.by === 'force_cancel') || (cause?.kind === 'agent-stop' && cause.action === 'force');
}

/** A cause whose stop sent the sandbox its one interrupt. */
export function interrupts(cause: StopCause | undefined): boolean {
  return cause !== undefined && !(cause.kind === 'agent-stop' && cause.action === 'force');
}

/** How a job came to its end. */
export type JobEnding =
  /** Its sandbox ran and exited; `stop` is what stopped it, if anything did. */
  | { readonly kind: 'exited'; readonly exit: ExitResult; readonly stop: StopCause | undefined }
  /** It was stopped before a sandbox ran (or before the agent took back a sandbox after a restart): nothing ran. */
  | { readonly kind: 'not-run'; readonly stop: Exclude<StopCause, { kind: 'memory-limit' }> }
  /** The engine or the sandbox could not be prepared. */
  | { readonly kind: 'not-started'; readonly error: JobErrorInfo; readonly line: string };

/**
 * How a job ended for this agent, as it counts it (its metrics, a
 * single-mode agent's exit code). `stopped`: the agent's own stop ended the
 * job; `handed_over`: another agent of the pool (a Kubernetes worker) took
 * it over.
 */
export type JobEnd = 'succeeded' | 'failed' | 'canceled' | 'not_started' | 'abandoned' | 'stopped' | 'handed_over';

export type Outcome = 'succeeded' | 'failed' | 'canceled';

export interface EndReport {
  /** Lines to write into the run log before it is closed. */
  readonly lines: readonly string[];
  /** The finish to send; none when the control plane has already moved on. */
  readonly finish: { readonly status: Outcome; readonly error?: JobErrorInfo } | undefined;
  readonly end: JobEnd;
}

/** How a sandbox's exit reads, given what stopped it. */
export function outcomeOf(exit: ExitResult, stop: StopCause | undefined): Outcome {
  if (exit.code === jobExitCodes.succeeded) return 'succeeded';
  if (exit.code === jobExitCodes.canceled || kills(stop) || (interrupts(stop) && exit.signal !== null)) return 'canceled';
  return 'failed';
}

export function decideEnd(ending: JobEnding, job: { readonly agentName: string; readonly kind: JobKind }): EndReport {
  if (ending.kind === 'not-started') return { lines: [ending.line], finish: { status: 'failed', error: ending.error }, end: 'not_started' };
  if (ending.kind === 'not-run') {
    const { stop } = ending;
    if (stop.kind === 'abandoned') return { lines: [], finish: undefined, end: 'abandoned' };
    if (stop.kind === 'agent-stop') {
      return {
        lines: [`The agent stopped (${stop.reason}) before the job operation started: nothing was run.`],
        finish: { status: 'failed', error: stoppedError(job.agentName, stop) },
        end: 'stopped',
      };
    }
    return { lines: ['The job was canceled before it started: nothing was run.'], finish: { status: 'canceled' }, end: 'canceled' };
  }
  const { exit, stop } = ending;
  const outcome = outcomeOf(exit, stop);
  const lines = outcome === 'failed' && exit.oomKilled ? ['Error: the job ran out of memory and was killed'] : [];
  const asExited: EndReport = { lines, finish: { status: outcome, ...(outcome === 'failed' ? { error: exitError(exit) } : {}) }, end: outcome };
  if (stop?.kind === 'abandoned') return { lines, finish: undefined, end: 'abandoned' };
  // A job that succeeded despite a stop, or that someone canceled, is reported as such.
  if (outcome === 'succeeded' || stop === undefined || stop.kind === 'canceled') return asExited;
  if (stop.kind === 'agent-stop') {
    return {
      lines: [...lines, `Outpost: the ${job.kind} was ended by its agent stopping (${stop.action}, ${stop.reason}).`],
      finish: { status: 'failed', error: stoppedError(job.agentName, stop) },
      end: 'stopped',
    };
  }
  const error = memoryLimitFailure(outcome, exit, stop.error)!;
  return { lines: [...lines, `Error: ${error.message} [${error.code}]`], finish: { status: 'failed', error }, end: 'failed' };
}

/**
 * How a job the memory guard interrupted is reported unless it succeeded:
 * failed for memory, not canceled (nobody canceled the run). A kernel kill
 * for memory that came anyway (the engine went on allocating) is reported as
 * that.
 */
export function memoryLimitFailure(outcome: Outcome, exit: ExitResult, limitError: JobErrorInfo): JobErrorInfo | undefined {
  if (outcome === 'succeeded') return undefined;
  return exit.oomKilled ? exitError(exit) : limitError;
}

export function errorInfo(error: unknown): JobErrorInfo {
  if (error instanceof OutpostError) return { code: error.code, message: error.message };
  return { code: 'internal', message: (error as Error).message ?? String(error) };
}

export function exitError(exit: ExitResult): JobErrorInfo {
  if (exit.oomKilled) return { code: 'out_of_memory', message: 'the job exceeded its memory limit and was killed (out of memory); raise the limit or reduce the configuration\'s memory use' };
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return { code: 'engine_failed', message: `the job operation ${how}` };
}

/**
 * A job the agent's stop ended. The server queues a plan again (a plan
 * changes nothing) and errors an apply, never re-running it.
 */
export function stoppedError(agentName: string, stop: { action: string; reason: string }): JobErrorInfo {
  return { code: 'agent_stopped', message: `agent ${agentName} was stopped (${stop.action}, ${stop.reason})` };
}
