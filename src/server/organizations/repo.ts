// SQL for organizations and API tokens.
import type { Kysely, Selectable } from 'kysely';
import type { ApiTokensTable, Database, OrganizationsTable } from '../db/schema.ts';

export async function findOrganization(db: Kysely<Database>, name: string): Promise<Selectable<OrganizationsTable> | undefined> {
  return db.selectFrom('organizations').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function listOrganizations(db: Kysely<Database>): Promise<Selectable<OrganizationsTable>[]> {
  return db.selectFrom('organizations').selectAll().orderBy('name').execute();
}

export async function insertOrganizationIfMissing(db: Kysely<Database>, row: OrganizationsTable): Promise<void> {
  await db.insertInto('organizations').values(row).onConflict((c) => c.column('id').doNothing()).execute();
}

export async function countApiTokens(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('api_tokens').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertApiToken(db: Kysely<Database>, row: ApiTokensTable): Promise<void> {
  await db.insertInto('api_tokens').values(row).execute();
}

export type ApiTokenRow = Selectable<ApiTokensTable>;
