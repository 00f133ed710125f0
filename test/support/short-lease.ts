// The server settings the fault tests that lose an agent share: a lease of
// 4 s, swept every 0.5 s, heartbeats every second, so a lost job is noticed
// within seconds and the bounds the tests assert stay short.
export const leaseTimeoutMs = 4_000;
export const sweepIntervalMs = 500;

export const shortLeaseServerEnv: Readonly<Record<string, string>> = {
  OUTPOST_LEASE_TIMEOUT: `${leaseTimeoutMs}ms`,
  OUTPOST_SWEEP_INTERVAL: `${sweepIntervalMs}ms`,
  OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s',
};
