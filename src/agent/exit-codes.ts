// How `outpost agent run` ends: its exit code for each way it stops
// (docs/cli.md, "Exit codes"). Orchestrators and scripts act on these
// (restart, alert, give up), so a code never changes meaning. The CLI's own
// table is src/cli/exit-codes.ts; the codes the two share (0, 1, 2, 130)
// mean the same kind of thing.
export const agentExitCodes = {
  /** Stopped cleanly; in single mode, the one job ran, whatever its outcome. */
  stopped: 0,
  /** The agent failed; in single mode, its job could not run. */
  failed: 1,
  /** Invalid configuration: a setting, no pool token, or a driver that cannot work here. */
  invalidConfiguration: 2,
  /** The control plane refused the pool token, or revoked the agent. */
  tokenRefused: 3,
  /** A signal after `force` (128 + SIGINT, the shell convention): exited at once, without reporting the jobs being killed. */
  signalAfterForce: 130,
} as const;

export type AgentExitCode = (typeof agentExitCodes)[keyof typeof agentExitCodes];
