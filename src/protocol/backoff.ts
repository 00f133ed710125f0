// How long to wait before the next attempt at something that failed: the
// delay doubles with each attempt up to a cap, and is jittered (a random
// half to whole of it) so that many agents or jobs cut off by the same outage
// do not all come back in the same instant. Every retry loop of the agent,
// the job operation and the CLI waits this way (docs/reliability.md,
// "Control plane restarts and outages").

export interface BackoffPolicy {
  /** The delay of attempt 0, before jitter. */
  readonly baseMs: number;
  /** No delay is longer than this, before jitter. */
  readonly maxMs: number;
  /** False for a lone client that no herd follows and whose total wait must not shrink by chance. Default true. */
  readonly jitter?: boolean;
}

/**
 * The delay before retrying after attempt `attempt` (0 for the first retry):
 * `min(maxMs, baseMs × 2^attempt)`, times a random factor in [0.5, 1)
 * unless jitter is off. `random` is for tests.
 */
export function backoff(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt));
  return policy.jitter === false ? ceiling : ceiling * (0.5 + random() / 2);
}
