// How a job's end is told to the server: the outcome of the sandbox's exit
// and the error it is reported with. The operation's own report (sent with
// the job token) names the cause when it has one; these describe what only
// the agent sees: the exit, a kill, a memory kill, the agent's own stop.
import type { JobErrorInfo } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { jobExitCodes } from '../protocol/statuses.ts';
import type { ExitResult } from './drivers/driver.ts';
import type { StopAction } from './shutdown-config.ts';

/** `forced`: a kill was scheduled; `interrupted`: the job was sent SIGINT. */
export function outcomeOf(exit: ExitResult, how: { forced: boolean; interrupted: boolean }): 'succeeded' | 'failed' | 'canceled' {
  if (exit.code === jobExitCodes.succeeded) return 'succeeded';
  if (exit.code === jobExitCodes.canceled || how.forced || (how.interrupted && exit.signal !== null)) return 'canceled';
  return 'failed';
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
 * changes nothing) and errors an apply, never re-running it (jobs/service.ts).
 */
export function stoppedError(agentName: string, stop: { action: StopAction; reason: string }): JobErrorInfo {
  return { code: 'agent_stopped', message: `agent ${agentName} was stopped (${stop.action}, ${stop.reason})` };
}
