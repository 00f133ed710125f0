// Commit statuses kept in step with runs: each run from a forge's commit has
// a status on that commit (context `outpost/<workspace>`), pending while it
// plans or applies, then success or failure with the change summary and a
// link to the run. A status is posted when what it would say changes; the
// post is a task, so a VCS agent posts it for a forge only it reaches.
import type { RunStatus } from '../../protocol/statuses.ts';
import type { ServerContext } from '../context.ts';
import * as repo from './repo.ts';
import { queueTask, type CommitState } from './tasks.ts';

interface RunSummary {
  status: RunStatus;
  plan_only: number;
  has_changes: number | null;
  resource_additions: number | null;
  resource_changes: number | null;
  resource_destructions: number | null;
  error_message: string | null;
}

function changes(run: RunSummary): string {
  if (run.has_changes === 0) return 'no changes';
  return `${run.resource_additions ?? 0} to add, ${run.resource_changes ?? 0} to change, ${run.resource_destructions ?? 0} to destroy`;
}

/** What the commit status of a run in this state says. */
export function commitStatusOf(run: RunSummary): { state: CommitState; description: string } {
  switch (run.status) {
    case 'pending':
    case 'plan_queued':
      return { state: 'pending', description: 'Run queued: waiting to plan' };
    case 'planning':
      return { state: 'pending', description: 'Planning' };
    case 'planned':
      return { state: 'pending', description: `Planned (${changes(run)}): waiting for confirmation` };
    case 'planned_and_finished':
      return { state: 'success', description: `Plan: ${changes(run)}` };
    case 'apply_queued':
    case 'applying':
      return { state: 'pending', description: `Applying (${changes(run)})` };
    case 'applied':
      return { state: 'success', description: `Applied: ${run.resource_additions ?? 0} added, ${run.resource_changes ?? 0} changed, ${run.resource_destructions ?? 0} destroyed` };
    case 'errored':
      return { state: 'failure', description: `Run errored: ${run.error_message ?? 'see the run'}` };
    case 'discarded':
      return { state: 'error', description: 'Run discarded' };
    case 'canceled':
    case 'force_canceled':
      return { state: 'error', description: 'Run canceled' };
  }
}

/** The link a commit status points to. */
export function runUrl(ctx: ServerContext, runId: string): string {
  return `${ctx.publicUrl}/api/v2/runs/${runId}`;
}

/**
 * Queues a status post for every run whose status would now say something
 * else; returns how many. A run has one post outstanding at a time, so its
 * statuses reach the forge in order: while one is, the run is compared again
 * on the next turn.
 */
export async function reportCommitStatuses(ctx: ServerContext): Promise<number> {
  let queued = 0;
  for (const row of await repo.statusesToCompare(ctx.db, 100)) {
    const status = commitStatusOf(row);
    const said = `${status.state}:${status.description}`;
    if (said !== row.reported) {
      const provider = await repo.findProvider(ctx.db, row.provider_id);
      if (provider) {
        const posted = await queueTask(ctx, provider, {
          kind: 'status',
          repository: row.repository,
          sha: row.sha,
          run_id: row.run_id,
          status: { state: status.state, context: row.context, description: status.description.slice(0, 140), target_url: runUrl(ctx, row.run_id) },
        });
        if (posted === undefined) continue;
        queued++;
      }
    }
    await repo.markStatusCompared(ctx.db, row.run_id, said, Number(row.updated_at));
  }
  return queued;
}
