// How `outpost agent run` ends: its exit code for each way it stops
// (docs/cli.md, "Exit codes"). Orchestrators and scripts act on these
// (restart, alert, give up), so a code never changes meaning. The CLI's own
// table is src/cli/exit-codes.ts; the codes the two share (0, 1, 2, 130)
// mean the same kind of thing.
import type { JobEnd } from './job-end.ts';

export const agentExitCodes = {
  /** Stopped cleanly; in single mode, the one job succeeded (or a signal stopped the agent). */
  stopped: 0,
  /** The agent failed; in single mode, its job could not run. */
  failed: 1,
  /** Invalid configuration: a setting, no pool token, or a driver that cannot work here. */
  invalidConfiguration: 2,
  /** The control plane refused the pool token, or revoked the agent. */
  tokenRefused: 3,
  /** Single mode: the job ran and failed (the engine reported an error). */
  jobFailed: 4,
  /** Single mode: the job was canceled. */
  jobCanceled: 5,
  /** Single mode: no job came within the idle timeout (or the job it was started for was no longer queued). */
  noJob: 6,
  /** A signal after `force` (128 + SIGINT, the shell convention): exited at once, without reporting the jobs being killed. */
  signalAfterForce: 130,
} as const;

export type AgentExitCode = (typeof agentExitCodes)[keyof typeof agentExitCodes];

/**
 * How a single-mode agent's one job ended, as its exit code; `undefined`: no
 * job came, within the idle timeout (`idleTimedOut`) or before a signal
 * stopped the agent (a clean stop).
 */
export function singleModeExitCode(end: JobEnd | undefined, idleTimedOut: boolean): AgentExitCode {
  switch (end) {
    case undefined:
      return idleTimedOut ? agentExitCodes.noJob : agentExitCodes.stopped;
    case 'succeeded':
    case 'stopped':
      return agentExitCodes.stopped;
    case 'failed':
      return agentExitCodes.jobFailed;
    case 'canceled':
      return agentExitCodes.jobCanceled;
    case 'not_started':
    case 'abandoned':
    case 'handed_over':
      return agentExitCodes.failed;
  }
}

/** The agent stopped for a reason its exit code names (a revoked token, a fatal error). */
export class AgentStoppedError extends Error {
  readonly exitCode: AgentExitCode;
  constructor(message: string, exitCode: AgentExitCode) {
    super(message);
    this.name = 'AgentStoppedError';
    this.exitCode = exitCode;
  }
}
