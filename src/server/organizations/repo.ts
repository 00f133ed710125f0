// SQL for organizations and API tokens.
import type { Kysely, Selectable } from 'kysely';
import type { ApiTokensTable, Database, OrganizationsTable } from '../db/schema.ts';

export type OrganizationRow = Selectable<OrganizationsTable>;
export type ApiTokenRow = Selectable<ApiTokensTable>;

export async function findOrganization(db: Kysely<Database>, name: string): Promise<OrganizationRow | undefined> {
  return db.selectFrom('organizations').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function listOrganizations(db: Kysely<Database>): Promise<OrganizationRow[]> {
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

export async function findApiTokenByHash(db: Kysely<Database>, tokenHash: string): Promise<ApiTokenRow | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

export async function recordApiTokenUse(db: Kysely<Database>, id: string, at: number): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}
