// The agent's stop settings (what SIGTERM, SIGINT and SIGHUP do), part of
// the agent's settings table (config.ts). The Scalr agent's SCALR_AGENT_*
// names and its spellings `grace-shutdown` / `force-shutdown` are accepted,
// so its recipes (and the timeouts they derive from a pod's termination
// grace period) work unchanged. shutdown.ts is where the modes are carried out.
import { asBool, asDurationMs } from '../config/settings.ts';

/** Each step escalates the previous one: drain → grace → force. */
export const stopActions = ['drain', 'grace', 'force'] as const;
export type StopAction = (typeof stopActions)[number];

const scalrSpellings: Readonly<Record<string, StopAction>> = { 'grace-shutdown': 'grace', 'force-shutdown': 'force' };

function asStopAction(raw: string): StopAction {
  const value = raw.trim().toLowerCase();
  const action = scalrSpellings[value] ?? stopActions.find((known) => known === value);
  if (action === undefined) throw new Error('expected drain, grace (or grace-shutdown), or force (or force-shutdown)');
  return action;
}

export const shutdownSettings = {
  onStopAction: {
    env: ['OUTPOST_AGENT_WORKER_ON_STOP_ACTION', 'SCALR_AGENT_WORKER_ON_STOP_ACTION'],
    default: 'drain',
    description:
      'What SIGTERM, SIGINT and SIGHUP do. `drain`: take no new jobs and let running ones finish, for at most the drain timeout, then go on as `grace`. `grace` (or `grace-shutdown`): interrupt running jobs (the engine stops at a safe point and saves state), kill their sandboxes after the grace timeout. `force` (or `force-shutdown`): kill running jobs at once. Then report each job the stop ended (a plan is queued again, an apply errors with `agent_stopped` and is never re-run) and exit 0. A second signal moves one step on; a signal after `force` exits 130 without reporting. See docs/reliability.md.',
    parse: asStopAction,
  },
  drainTimeout: {
    env: ['OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT', 'SCALR_AGENT_WORKER_DRAIN_TIMEOUT'],
    default: '1h',
    description: 'In `drain`, how long running jobs may go on after the stop signal before they are interrupted as in `grace` (a bare number is seconds, as for the Scalr agent).',
    parse: asDurationMs,
  },
  graceShutdownTimeout: {
    env: ['OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT', 'SCALR_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT'],
    default: '60s',
    description: 'In `grace` (and after a drain timeout), how long an interrupted job may take to stop before its sandbox is killed (SIGKILL).',
    parse: asDurationMs,
  },
  disconnectOnStop: {
    env: ['OUTPOST_AGENT_DISCONNECT_ON_STOP', 'SCALR_AGENT_DISCONNECT_ON_STOP'],
    default: 'true',
    description: 'Deregister from the pool when the agent stops, so it leaves the pool\'s agent list at once. `false`: it stays listed until the server marks it `offline` (after `OUTPOST_LEASE_TIMEOUT` of silence).',
    parse: asBool,
  },
} as const;
