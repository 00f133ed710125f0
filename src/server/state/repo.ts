// SQL for state versions and the state lock.
import type { Kysely, Selectable } from 'kysely';
import type { Database, StateLocksTable, StateVersionsTable } from '../db/schema.ts';

export type StateVersionRow = Selectable<StateVersionsTable>;
export type StateLockRow = Selectable<StateLocksTable>;

/** A workspace's state versions, newest first: the current one is the first. */
function newestFirst(db: Kysely<Database>, workspaceId: string) {
  return db.selectFrom('state_versions').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').orderBy('serial', 'desc').orderBy('id', 'desc');
}

export async function currentStateVersion(db: Kysely<Database>, workspaceId: string): Promise<StateVersionRow | undefined> {
  return newestFirst(db, workspaceId).limit(1).executeTakeFirst();
}

/** A page of a workspace's state versions, newest first. */
export async function listStateVersions(db: Kysely<Database>, workspaceId: string, offset: number, limit: number): Promise<StateVersionRow[]> {
  return newestFirst(db, workspaceId).offset(offset).limit(limit).execute();
}

export async function countStateVersions(db: Kysely<Database>, workspaceId: string): Promise<number> {
  const row = await db.selectFrom('state_versions').select((eb) => eb.fn.countAll().as('count')).where('workspace_id', '=', workspaceId).executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function findStateVersion(db: Kysely<Database>, id: string): Promise<StateVersionRow | undefined> {
  return db.selectFrom('state_versions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertStateVersion(db: Kysely<Database>, row: StateVersionsTable): Promise<void> {
  await db.insertInto('state_versions').values(row).execute();
}

export async function findLock(db: Kysely<Database>, workspaceId: string): Promise<StateLockRow | undefined> {
  return db.selectFrom('state_locks').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirst();
}

/** Takes the lock if free; the primary key makes two takers impossible. */
export async function insertLock(db: Kysely<Database>, row: StateLocksTable): Promise<boolean> {
  const result = await db.insertInto('state_locks').values(row).onConflict((c) => c.column('workspace_id').doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

/** The lock with, for a job's lock, the run of that job. */
export async function findLockWithRun(db: Kysely<Database>, workspaceId: string): Promise<(StateLockRow & { run_id: string | null }) | undefined> {
  return db
    .selectFrom('state_locks')
    .leftJoin('jobs', 'jobs.id', 'state_locks.job_id')
    .selectAll('state_locks')
    .select('jobs.run_id as run_id')
    .where('state_locks.workspace_id', '=', workspaceId)
    .executeTakeFirst();
}

/** Releases a user's lock: only the API token that took it matches. */
export async function deleteTokenLock(db: Kysely<Database>, workspaceId: string, tokenId: string): Promise<boolean> {
  const result = await db.deleteFrom('state_locks').where('workspace_id', '=', workspaceId).where('token_id', '=', tokenId).where('job_id', 'is', null).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

/** Removes whatever lock the workspace has. */
export async function deleteAnyLock(db: Kysely<Database>, workspaceId: string): Promise<boolean> {
  const result = await db.deleteFrom('state_locks').where('workspace_id', '=', workspaceId).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

export async function isRunOfWorkspace(db: Kysely<Database>, runId: string, workspaceId: string): Promise<boolean> {
  const row = await db.selectFrom('runs').select('id').where('id', '=', runId).where('workspace_id', '=', workspaceId).executeTakeFirst();
  return row !== undefined;
}

/** Releases the lock only when both the lock id and the job that took it match. */
export async function deleteLock(db: Kysely<Database>, workspaceId: string, lockId: string, jobId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('state_locks')
    .where('workspace_id', '=', workspaceId)
    .where('lock_id', '=', lockId)
    .where('job_id', '=', jobId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

/** Removes the lock a job took, whoever it is (its engine was lost or killed). */
export async function deleteLocksOfJob(db: Kysely<Database>, jobId: string): Promise<void> {
  await db.deleteFrom('state_locks').where('job_id', '=', jobId).execute();
}

/** Removes the locks any job of the run took. */
export async function deleteLocksOfRun(db: Kysely<Database>, runId: string): Promise<void> {
  await db
    .deleteFrom('state_locks')
    .where('job_id', 'in', (eb) => eb.selectFrom('jobs').select('jobs.id').where('jobs.run_id', '=', runId))
    .execute();
}
