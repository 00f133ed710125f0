// SQL for agent pools and pool tokens.
import type { Kysely, Selectable } from 'kysely';
import type { AgentPoolsTable, Database, PoolTokensTable } from '../db/schema.ts';

export type PoolRow = Selectable<AgentPoolsTable> & { agent_count: number };
export type PoolTokenRow = Selectable<PoolTokensTable>;

function poolsWithCounts(db: Kysely<Database>) {
  return db
    .selectFrom('agent_pools')
    .selectAll('agent_pools')
    .select((eb) =>
      eb
        .selectFrom('agents')
        .select((inner) => inner.fn.countAll<number>().as('n'))
        .whereRef('agents.pool_id', '=', 'agent_pools.id')
        .where('agents.status', '!=', 'offline')
        .where('agents.deregistered_at', 'is', null)
        .as('agent_count'),
    );
}

export async function listPools(db: Kysely<Database>, organizationId: string): Promise<PoolRow[]> {
  const rows = await poolsWithCounts(db).where('organization_id', '=', organizationId).orderBy('name').execute();
  return rows.map((row) => ({ ...row, agent_count: Number(row.agent_count ?? 0) }));
}

export async function findPool(db: Kysely<Database>, id: string): Promise<PoolRow | undefined> {
  const row = await poolsWithCounts(db).where('id', '=', id).executeTakeFirst();
  return row ? { ...row, agent_count: Number(row.agent_count ?? 0) } : undefined;
}

export async function findPoolByName(db: Kysely<Database>, organizationId: string, name: string): Promise<Selectable<AgentPoolsTable> | undefined> {
  return db.selectFrom('agent_pools').selectAll().where('organization_id', '=', organizationId).where('name', '=', name).executeTakeFirst();
}

export async function renamePool(db: Kysely<Database>, id: string, name: string): Promise<void> {
  await db.updateTable('agent_pools').set({ name }).where('id', '=', id).execute();
}

/** The ids of the workspaces each of these pools serves (TFE's `workspaces` relationship), by name. */
export async function workspaceIdsByPool(db: Kysely<Database>, poolIds: readonly string[]): Promise<Map<string, string[]>> {
  const byPool = new Map<string, string[]>(poolIds.map((id) => [id, []]));
  if (poolIds.length === 0) return byPool;
  const rows = await db.selectFrom('workspaces').select(['id', 'pool_id']).where('pool_id', 'in', [...poolIds]).orderBy('name').execute();
  for (const row of rows) if (row.pool_id) byPool.get(row.pool_id)?.push(row.id);
  return byPool;
}

export async function insertPool(db: Kysely<Database>, row: AgentPoolsTable): Promise<void> {
  await db.insertInto('agent_pools').values(row).execute();
}

export async function deletePool(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('agent_pools').where('id', '=', id).execute();
}

export async function countWorkspacesUsingPool(db: Kysely<Database>, poolId: string): Promise<number> {
  const row = await db.selectFrom('workspaces').select((eb) => eb.fn.countAll<number>().as('n')).where('pool_id', '=', poolId).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Version control providers reached through the pool: it relays for them, so it stays. */
export async function countProvidersUsingPool(db: Kysely<Database>, poolId: string): Promise<number> {
  const row = await db.selectFrom('vcs_providers').select((eb) => eb.fn.countAll<number>().as('n')).where('pool_id', '=', poolId).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertPoolToken(db: Kysely<Database>, row: PoolTokensTable): Promise<void> {
  await db.insertInto('pool_tokens').values(row).execute();
}

export async function listPoolTokens(db: Kysely<Database>, poolId: string): Promise<PoolTokenRow[]> {
  return db.selectFrom('pool_tokens').selectAll().where('pool_id', '=', poolId).orderBy('created_at').orderBy('id').execute();
}

export async function findPoolToken(db: Kysely<Database>, id: string): Promise<PoolTokenRow | undefined> {
  return db.selectFrom('pool_tokens').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findPoolTokenByHash(db: Kysely<Database>, hash: string): Promise<PoolTokenRow | undefined> {
  return db.selectFrom('pool_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
}

export async function revokePoolToken(db: Kysely<Database>, id: string, at: number): Promise<void> {
  await db.updateTable('pool_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
}

export async function recordPoolTokenUse(db: Kysely<Database>, id: string, at: number): Promise<void> {
  await db.updateTable('pool_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}
