// SQL for runs.
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { RunStatus } from '../../protocol/statuses.ts';
import type { Database, RunsTable } from '../db/schema.ts';

export type RunRow = Selectable<RunsTable>;

export async function findRun(db: Kysely<Database>, id: string): Promise<RunRow | undefined> {
  return db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listRuns(db: Kysely<Database>, workspaceId: string, limit: number): Promise<RunRow[]> {
  return db.selectFrom('runs').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

/** The runs of an organization in one of `statuses`, oldest first (TFE's run queue). */
export async function listRunsOfOrganization(db: Kysely<Database>, organizationId: string, statuses: readonly RunStatus[], limit: number): Promise<RunRow[]> {
  return db
    .selectFrom('runs')
    .selectAll('runs')
    .innerJoin('workspaces', 'workspaces.id', 'runs.workspace_id')
    .where('workspaces.organization_id', '=', organizationId)
    .where('runs.status', 'in', [...statuses])
    .orderBy('runs.created_at')
    .orderBy('runs.id')
    .limit(limit)
    .execute();
}

export async function insertRun(db: Kysely<Database>, row: RunsTable): Promise<void> {
  await db.insertInto('runs').values(row).execute();
}

/** Moves a run from one of `from` to a new status; false if it was not in `from` (someone else moved it). */
export async function transitionRun(
  db: Kysely<Database>,
  run: RunRow,
  from: readonly RunStatus[],
  to: RunStatus,
  at: number,
  changes: Updateable<RunsTable> = {},
): Promise<boolean> {
  const timestamps = { ...(JSON.parse(run.status_timestamps) as Record<string, string>), [`${to.replace(/_/g, '-')}-at`]: new Date(at).toISOString() };
  const result = await db
    .updateTable('runs')
    .set({ ...changes, status: to, status_timestamps: JSON.stringify(timestamps), updated_at: at })
    .where('id', '=', run.id)
    .where('status', 'in', [...from])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function updateRun(db: Kysely<Database>, id: string, changes: Updateable<RunsTable>): Promise<void> {
  await db.updateTable('runs').set(changes).where('id', '=', id).execute();
}

/** The oldest state-changing run waiting for its workspace. */
export async function nextPendingRun(db: Kysely<Database>, workspaceId: string): Promise<RunRow | undefined> {
  return db
    .selectFrom('runs')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('status', '=', 'pending')
    .where('plan_only', '=', 0)
    .orderBy('created_at')
    .orderBy('id')
    .executeTakeFirst();
}
