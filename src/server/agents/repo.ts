// SQL for agents.
import type { Kysely, Selectable, Updateable } from 'kysely';
import { activeJobStatuses } from '../../protocol/statuses.ts';
import type { AgentsTable, Database } from '../db/schema.ts';

export type AgentRow = Selectable<AgentsTable>;

export async function insertAgent(db: Kysely<Database>, row: AgentsTable): Promise<void> {
  await db.insertInto('agents').values(row).execute();
}

export async function updateAgent(db: Kysely<Database>, id: string, changes: Updateable<AgentsTable>): Promise<void> {
  await db.updateTable('agents').set(changes).where('id', '=', id).execute();
}

/**
 * The agent a session token (by hash) belongs to, and whether the pool token
 * it registered with still stands (false when revoked or gone). One query:
 * every poll and heartbeat of every agent asks it.
 */
export async function findAgentBySession(db: Kysely<Database>, sessionTokenHash: string): Promise<{ agent: AgentRow; poolTokenValid: boolean } | undefined> {
  const row = await db
    .selectFrom('agents')
    .leftJoin('pool_tokens', 'pool_tokens.id', 'agents.pool_token_id')
    .selectAll('agents')
    .select(['pool_tokens.id as pool_token_found', 'pool_tokens.revoked_at as pool_token_revoked_at'])
    .where('agents.session_token_hash', '=', sessionTokenHash)
    .executeTakeFirst();
  if (!row) return undefined;
  const { pool_token_found, pool_token_revoked_at, ...agent } = row;
  return { agent, poolTokenValid: pool_token_found !== null && pool_token_revoked_at === null };
}

export async function findAgent(db: Kysely<Database>, id: string): Promise<AgentRow | undefined> {
  return db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Agents still registered with a pool token (to tell them at once when it is revoked). */
export async function registeredAgentIdsOfToken(db: Kysely<Database>, poolTokenId: string): Promise<string[]> {
  const rows = await db.selectFrom('agents').select('id').where('pool_token_id', '=', poolTokenId).where('deregistered_at', 'is', null).execute();
  return rows.map((row) => row.id);
}

/** Agents of a pool, newest first, with how many jobs each holds; deregistered ones are history and omitted. */
export async function listAgents(db: Kysely<Database>, poolId: string): Promise<(AgentRow & { running_jobs: number })[]> {
  const rows = await db
    .selectFrom('agents')
    .selectAll('agents')
    .select((eb) =>
      eb
        .selectFrom('jobs')
        .select((inner) => inner.fn.countAll<number>().as('n'))
        .whereRef('jobs.agent_id', '=', 'agents.id')
        .where('jobs.status', 'in', [...activeJobStatuses])
        .as('running_jobs'),
    )
    .where('pool_id', '=', poolId)
    .where('deregistered_at', 'is', null)
    .orderBy('registered_at', 'desc')
    // A fixed order for ties, so pages do not overlap.
    .orderBy('id')
    .execute();
  return rows.map((row) => ({ ...row, running_jobs: Number(row.running_jobs ?? 0) }));
}

/** Agents not heard from since `before` become offline. */
export async function markSilentAgentsOffline(db: Kysely<Database>, before: number): Promise<number> {
  const result = await db
    .updateTable('agents')
    .set({ status: 'offline' })
    .where('status', '!=', 'offline')
    .where('deregistered_at', 'is', null)
    .where('last_seen_at', '<', before)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Registered (not deregistered) agents by pool and status, for /metrics. */
export async function countAgentsByPoolAndStatus(db: Kysely<Database>): Promise<{ poolId: string; status: AgentRow['status']; count: number }[]> {
  const rows = await db
    .selectFrom('agents')
    .select((eb) => ['pool_id', 'status', eb.fn.countAll<number>().as('n')])
    .where('deregistered_at', 'is', null)
    .groupBy(['pool_id', 'status'])
    .execute();
  return rows.map((row) => ({ poolId: row.pool_id, status: row.status, count: Number(row.n) }));
}
