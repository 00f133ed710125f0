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

export async function updateConfigurationVersion(db: Kysely<Database>, id: string, changes: Updateable<ConfigurationVersionsTable>): Promise<void> {
  await db.updateTable('configuration_versions').set(changes).where('id', '=', id).execute();
}

export async function findConfigurationVersions(db: Kysely<Database>, ids: string[]): Promise<ConfigurationVersionRow[]> {
  return db.selectFrom('configuration_versions').selectAll().where('id', 'in', ids).execute();
}
