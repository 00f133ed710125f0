// SQL for configuration versions.
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { ConfigurationVersionsTable, Database } from '../db/schema.ts';

export type ConfigurationVersionRow = Selectable<ConfigurationVersionsTable>;

export async function findConfigurationVersion(db: Kysely<Database>, id: string): Promise<ConfigurationVersionRow | undefined> {
  return db.selectFrom('configuration_versions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertConfigurationVersion(db: Kysely<Database>, row: ConfigurationVersionsTable): Promise<void> {
  await db.insertInto('configuration_versions').values(row).execute();
}

/** Marks a pending version uploaded; false when it no longer was pending (a concurrent upload won). */
export async function markUploaded(db: Kysely<Database>, id: string, changes: Updateable<ConfigurationVersionsTable>): Promise<boolean> {
  const result = await db.updateTable('configuration_versions').set(changes).where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function findConfigurationVersions(db: Kysely<Database>, ids: string[]): Promise<ConfigurationVersionRow[]> {
  return db.selectFrom('configuration_versions').selectAll().where('id', 'in', ids).execute();
}

/** A workspace's configuration versions, newest first; the newest `limit`. */
export async function listConfigurationVersions(db: Kysely<Database>, workspaceId: string, limit: number): Promise<ConfigurationVersionRow[]> {
  return db.selectFrom('configuration_versions').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

/** The newest uploaded configuration version of a workspace. */
export async function latestUploaded(db: Kysely<Database>, workspaceId: string): Promise<ConfigurationVersionRow | undefined> {
  return db
    .selectFrom('configuration_versions')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('status', '=', 'uploaded')
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}
