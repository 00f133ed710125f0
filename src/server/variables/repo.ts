// SQL for workspace variables.
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Database, VariablesTable } from '../db/schema.ts';

export type VariableRow = Selectable<VariablesTable>;

export async function listVariables(db: Kysely<Database>, workspaceId: string): Promise<VariableRow[]> {
  return db.selectFrom('variables').selectAll().where('workspace_id', '=', workspaceId).orderBy('category').orderBy('key').execute();
}

export async function findVariable(db: Kysely<Database>, workspaceId: string, id: string): Promise<VariableRow | undefined> {
  return db.selectFrom('variables').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

export async function findVariableByKey(db: Kysely<Database>, workspaceId: string, category: string, key: string): Promise<VariableRow | undefined> {
  return db
    .selectFrom('variables')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('category', '=', category as VariableRow['category'])
    .where('key', '=', key)
    .executeTakeFirst();
}

export async function insertVariable(db: Kysely<Database>, row: VariablesTable): Promise<void> {
  await db.insertInto('variables').values(row).execute();
}

export async function updateVariable(db: Kysely<Database>, id: string, changes: Updateable<VariablesTable>): Promise<void> {
  await db.updateTable('variables').set(changes).where('id', '=', id).execute();
}

export async function deleteVariable(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('variables').where('id', '=', id).execute();
}
