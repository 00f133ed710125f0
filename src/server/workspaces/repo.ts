// SQL for workspaces.
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Database, WorkspacesTable } from '../db/schema.ts';

export type WorkspaceRow = Selectable<WorkspacesTable>;

export async function listWorkspaces(db: Kysely<Database>, organizationId: string): Promise<WorkspaceRow[]> {
  return db.selectFrom('workspaces').selectAll().where('organization_id', '=', organizationId).orderBy('name').execute();
}

export async function findWorkspace(db: Kysely<Database>, id: string): Promise<WorkspaceRow | undefined> {
  return db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findWorkspaceByName(db: Kysely<Database>, organizationId: string, name: string): Promise<WorkspaceRow | undefined> {
  return db.selectFrom('workspaces').selectAll().where('organization_id', '=', organizationId).where('name', '=', name).executeTakeFirst();
}

export async function insertWorkspace(db: Kysely<Database>, row: WorkspacesTable): Promise<void> {
  await db.insertInto('workspaces').values(row).execute();
}

export async function updateWorkspace(db: Kysely<Database>, id: string, changes: Updateable<WorkspacesTable>): Promise<void> {
  await db.updateTable('workspaces').set(changes).where('id', '=', id).execute();
}

export async function deleteWorkspace(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('workspaces').where('id', '=', id).execute();
}

export async function isStateLocked(db: Kysely<Database>, workspaceId: string): Promise<boolean> {
  const row = await db.selectFrom('state_locks').select('lock_id').where('workspace_id', '=', workspaceId).executeTakeFirst();
  return row !== undefined;
}

/**
 * Takes the workspace for a state-changing run: succeeds only if no other run
 * holds it. One conditional UPDATE, so two servers cannot both win.
 */
export async function claimWorkspace(db: Kysely<Database>, workspaceId: string, runId: string, at: number): Promise<boolean> {
  const result = await db
    .updateTable('workspaces')
    .set({ current_run_id: runId, updated_at: at })
    .where('id', '=', workspaceId)
    .where('current_run_id', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function releaseWorkspace(db: Kysely<Database>, workspaceId: string, runId: string, at: number): Promise<boolean> {
  const result = await db
    .updateTable('workspaces')
    .set({ current_run_id: null, updated_at: at })
    .where('id', '=', workspaceId)
    .where('current_run_id', '=', runId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Serialises run bookkeeping per workspace on PostgreSQL (SQLite serialises
 * all writers already): a run created while the holder finishes is either
 * seen by the finisher or finds the workspace free, never neither.
 */
export async function lockWorkspaceRow(db: Kysely<Database>, dialect: 'sqlite' | 'postgres', workspaceId: string): Promise<void> {
  if (dialect !== 'postgres') return;
  await db.selectFrom('workspaces').select('id').where('id', '=', workspaceId).forUpdate().executeTakeFirst();
}

export async function countUnfinishedRuns(db: Kysely<Database>, workspaceId: string): Promise<number> {
  const row = await db
    .selectFrom('runs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('workspace_id', '=', workspaceId)
    .where('status', 'not in', ['planned_and_finished', 'applied', 'discarded', 'errored', 'canceled', 'force_canceled'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
