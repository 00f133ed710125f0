// The run state machine (docs/architecture.md), in one place:
//
//   pending ─▶ plan_queued ─▶ planning ─▶ planned ─▶ apply_queued ─▶ applying ─▶ applied
//                                  │          │                          │
//                                  │          └▶ discarded               ├▶ errored
//                                  ├▶ planned_and_finished (no changes,  └▶ canceled
//                                  │   or plan-only)
//                                  ├▶ errored
//                                  └▶ canceled / force_canceled   (from any non-final status)
//
// A workspace runs one state-changing run at a time: the run holding
// workspaces.current_run_id. Later runs wait in `pending` and are started
// in creation order when the holder reaches a final status. Plan-only runs
// skip the queue and never hold the workspace.
import type { RunStatus } from '../../protocol/statuses.ts';

export const cancelableStatuses: readonly RunStatus[] = ['pending', 'plan_queued', 'planning', 'apply_queued', 'applying'];
export const discardableStatuses: readonly RunStatus[] = ['pending', 'planned'];
export const confirmableStatuses: readonly RunStatus[] = ['planned'];

/** What a finished plan leads to. */
export function afterPlan(run: { plan_only: number; auto_apply: number }, hasChanges: boolean): RunStatus {
  if (run.plan_only === 1 || !hasChanges) return 'planned_and_finished';
  return run.auto_apply === 1 ? 'apply_queued' : 'planned';
}

/** The run status a job's end maps to, for a job that did not succeed. */
export function afterUnsuccessfulJob(outcome: 'failed' | 'canceled' | 'lost', forced: boolean): RunStatus {
  if (outcome === 'canceled') return forced ? 'force_canceled' : 'canceled';
  return 'errored';
}

export function runningStatusOf(kind: 'plan' | 'apply'): RunStatus {
  return kind === 'plan' ? 'planning' : 'applying';
}

export function queuedStatusOf(kind: 'plan' | 'apply'): RunStatus {
  return kind === 'plan' ? 'plan_queued' : 'apply_queued';
}

/** TFE plan/apply resource status for a phase, derived from the run and its job. */
export function phaseStatus(
  runStatus: RunStatus,
  kind: 'plan' | 'apply',
  jobStatus: string | undefined,
): 'pending' | 'queued' | 'running' | 'finished' | 'errored' | 'canceled' | 'unreachable' {
  if (jobStatus === undefined) {
    if (kind === 'apply' && ['applied', 'planned_and_finished', 'discarded', 'errored', 'canceled', 'force_canceled'].includes(runStatus)) return 'unreachable';
    if (kind === 'plan' && ['discarded', 'canceled', 'force_canceled', 'errored'].includes(runStatus)) return 'unreachable';
    return 'pending';
  }
  switch (jobStatus) {
    case 'queued':
      return 'queued';
    case 'leased':
    case 'running':
      return 'running';
    case 'succeeded':
      return 'finished';
    case 'canceled':
      return 'canceled';
    default:
      return 'errored';
  }
}
