// SQL for workspaces.
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Database, WorkspacesTable } from '../db/schema.ts';

export type WorkspaceRow = Selectable<WorkspacesTable>;

export interface WorkspaceFilter {
  /** Part of the name (TFE's `search[name]`). */
  nameContains?: string | undefined;
  /** Tags a workspace must all have (`search[tags]`). */
  tags?: readonly string[] | undefined;
  /** Tags it must have none of (`search[exclude-tags]`). */
  excludeTags?: readonly string[] | undefined;
}

export async function listWorkspaces(db: Kysely<Database>, organizationId: string, filter: WorkspaceFilter = {}): Promise<WorkspaceRow[]> {
  let query = db.selectFrom('workspaces').selectAll().where('organization_id', '=', organizationId);
  // Matched in code below, not with LIKE: a name may hold % or _, and SQLite and PostgreSQL differ on case.
  const tags = filter.tags ?? [];
  if (tags.length > 0) {
    query = query.where('id', 'in', (eb) =>
      eb.selectFrom('workspace_tags').select('workspace_id').where('tag', 'in', [...tags]).groupBy('workspace_id').having((h) => h.fn.countAll(), '=', tags.length),
    );
  }
  const excluded = filter.excludeTags ?? [];
  if (excluded.length > 0) query = query.where('id', 'not in', (eb) => eb.selectFrom('workspace_tags').select('workspace_id').where('tag', 'in', [...excluded]));
  const rows = await query.orderBy('name').execute();
  const needle = filter.nameContains?.toLowerCase();
  return needle ? rows.filter((row) => row.name.toLowerCase().includes(needle)) : rows;
}

export async function tagsOf(db: Kysely<Database>, workspaceId: string): Promise<string[]> {
  const rows = await db.selectFrom('workspace_tags').select('tag').where('workspace_id', '=', workspaceId).orderBy('tag').execute();
  return rows.map((row) => row.tag);
}

export async function addTags(db: Kysely<Database>, workspaceId: string, tags: readonly string[]): Promise<void> {
  if (tags.length === 0) return;
  await db
    .insertInto('workspace_tags')
    .values(tags.map((tag) => ({ workspace_id: workspaceId, tag })))
    .onConflict((oc) => oc.columns(['workspace_id', 'tag']).doNothing())
    .execute();
}

export async function removeTags(db: Kysely<Database>, workspaceId: string, tags: readonly string[]): Promise<void> {
  if (tags.length === 0) return;
  await db.deleteFrom('workspace_tags').where('workspace_id', '=', workspaceId).where('tag', 'in', [...tags]).execute();
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
