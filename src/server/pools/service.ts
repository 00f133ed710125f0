// Agent pools and their tokens: who may see and change them, the rule that
// a pool in use by workspaces stays, and what a pool token opens
// (registration only).
import { OutpostError } from '../../protocol/errors.ts';
import type { PoolKind } from '../../protocol/statuses.ts';
import { registeredAgentIdsOfToken } from '../agents/repo.ts';
import type { ServerContext } from '../context.ts';
import { uniqueWrite } from '../db/unique-violation.ts';
import { hashToken, newId, newPoolToken } from '../ids.ts';
import type { OrganizationRow } from '../organizations/repo.ts';
import { requireOrganization, type ApiPrincipal } from '../organizations/service.ts';
import * as repo from './repo.ts';

export async function requirePool(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.PoolRow> {
  const pool = await repo.findPool(ctx.db, id);
  if (!pool || pool.organization_id !== principal.organizationId) throw new OutpostError('not_found', `agent pool ${id} not found`);
  return pool;
}

/** The organization's pools by name; `nameContains` keeps those whose name holds it, ignoring case (TFE's `q`). */
export async function listPools(ctx: ServerContext, principal: ApiPrincipal, org: string, nameContains?: string): Promise<repo.PoolRow[]> {
  const { id } = await requireOrganization(ctx, principal, org);
  const rows = await repo.listPools(ctx.db, id);
  // Matched here, not with LIKE: the query may hold % or _, and SQLite and PostgreSQL differ on case.
  const needle = nameContains?.toLowerCase();
  return needle ? rows.filter((row) => row.name.toLowerCase().includes(needle)) : rows;
}

/** Creates a pool in an organization the caller may act in (requireOrganization); names are unique per organization. */
export async function createPool(ctx: ServerContext, org: OrganizationRow, name: string, kind: PoolKind = 'runner'): Promise<repo.PoolRow> {
  if (await repo.findPoolByName(ctx.db, org.id, name)) throw new OutpostError('already_exists', `agent pool ${name} already exists`);
  const id = newId('apool');
  await uniqueWrite(() => repo.insertPool(ctx.db, { id, organization_id: org.id, name, kind, created_at: ctx.now() }), `agent pool ${name} already exists`);
  return (await repo.findPool(ctx.db, id))!;
}

/** Renames a pool; names stay unique per organization. */
export async function renamePool(ctx: ServerContext, pool: repo.PoolRow, name: string): Promise<repo.PoolRow> {
  if (name === pool.name) return pool;
  if (await repo.findPoolByName(ctx.db, pool.organization_id, name)) throw new OutpostError('already_exists', `agent pool ${name} already exists`);
  await uniqueWrite(() => repo.renamePool(ctx.db, pool.id, name), `agent pool ${name} already exists`);
  return (await repo.findPool(ctx.db, pool.id))!;
}

export async function deletePool(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<void> {
  const pool = await requirePool(ctx, principal, id);
  if ((await repo.countWorkspacesUsingPool(ctx.db, pool.id)) > 0) {
    throw new OutpostError('conflict', `agent pool ${pool.name} is used by workspaces; move them to another pool first`);
  }
  if ((await repo.countProvidersUsingPool(ctx.db, pool.id)) > 0) {
    throw new OutpostError('conflict', `agent pool ${pool.name} relays for VCS providers; give them another pool (or none) first`);
  }
  await repo.deletePool(ctx.db, pool.id);
}

/** Creates a token for a pool the caller may act on (requirePool); the secret (which tells agents this server's URL) is returned once and stored hashed. */
export async function createPoolToken(ctx: ServerContext, pool: repo.PoolRow, description: string): Promise<{ row: repo.PoolTokenRow; secret: string }> {
  const secret = newPoolToken(ctx.publicUrl);
  const row = {
    id: newId('at'),
    pool_id: pool.id,
    description,
    token_hash: hashToken(secret),
    created_at: ctx.now(),
    last_used_at: null,
    revoked_at: null,
  };
  await repo.insertPoolToken(ctx.db, row);
  return { row, secret };
}

export async function listPoolTokens(ctx: ServerContext, principal: ApiPrincipal, poolId: string): Promise<repo.PoolTokenRow[]> {
  const pool = await requirePool(ctx, principal, poolId);
  return repo.listPoolTokens(ctx.db, pool.id);
}

/** One token of a pool in the caller's organization; another organization's is not found, as an unknown one. */
export async function requirePoolToken(ctx: ServerContext, principal: ApiPrincipal, tokenId: string): Promise<repo.PoolTokenRow> {
  const token = await repo.findPoolToken(ctx.db, tokenId);
  if (!token) throw new OutpostError('not_found', `token ${tokenId} not found`);
  const pool = await repo.findPool(ctx.db, token.pool_id);
  if (pool?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `token ${tokenId} not found`);
  return token;
}

export async function revokePoolToken(ctx: ServerContext, principal: ApiPrincipal, tokenId: string): Promise<void> {
  const token = await requirePoolToken(ctx, principal, tokenId);
  await repo.revokePoolToken(ctx.db, token.id, ctx.now());
  // Wake the long-polls of this token's agents, idle or busy (a busy agent
  // waits on its own topic only): each re-authenticates and ends with 401
  // token_revoked at once.
  for (const agentId of await registeredAgentIdsOfToken(ctx.db, token.id)) ctx.notifier.notify(`agent:${agentId}`);
}

/** The pool token an agent registers with, if it stands; its use is recorded. */
export async function acceptPoolToken(ctx: ServerContext, secret: string): Promise<repo.PoolTokenRow> {
  const token = await repo.findPoolTokenByHash(ctx.db, hashToken(secret));
  if (!token) throw new OutpostError('token_invalid', 'the pool token is not valid');
  if (token.revoked_at !== null) throw new OutpostError('token_revoked', 'the pool token has been revoked');
  return token;
}

export async function recordPoolTokenUse(ctx: ServerContext, token: repo.PoolTokenRow): Promise<void> {
  await repo.recordPoolTokenUse(ctx.db, token.id, ctx.now());
}

/** The ids of the workspaces each pool serves, by pool id (for the pool resources' `workspaces`). */
export function workspaceIdsOfPools(ctx: ServerContext, poolIds: readonly string[]): Promise<Map<string, string[]>> {
  return repo.workspaceIdsByPool(ctx.db, poolIds);
}
