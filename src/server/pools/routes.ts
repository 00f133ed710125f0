// Agent pools and their tokens (TFE: agent-pools, authentication-tokens).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { poolInput, poolTokenInput, requestOf } from '../../protocol/api-inputs.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { poolKinds } from '../../protocol/statuses.ts';
import type { Pool, PoolToken } from '../../protocol/api-resources.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import { paginate } from '../http/pagination.ts';
import { requireOrganization } from '../organizations/service.ts';
import { includeQuery, parseInclude } from '../runs/included.ts';
import { present as presentWorkspace } from '../workspaces/presenter.ts';
import { findWorkspaceById, viewOf } from '../workspaces/service.ts';
import type { PoolRow, PoolTokenRow } from './repo.ts';
import { createPool, createPoolToken, deletePool, listPools, listPoolTokens, renamePool, requirePool, requirePoolToken, revokePoolToken, workspaceIdsOfPools } from './service.ts';

const createPoolBody = requestOf('agent-pools', poolInput);
/**
 * A pool's changes: its name. go-tfe's update also carries
 * `organization-scoped` (Outpost's pools always are) and may carry
 * relationships (allowed workspaces), which are ignored; the kind is set at
 * creation, so naming another one is refused rather than ignored.
 */
const updatePoolBody = z.object({
  data: z.object({
    type: z.literal('agent-pools'),
    attributes: z.object({ name: poolInput.shape.name.optional(), kind: z.enum(poolKinds).optional(), 'organization-scoped': z.literal(true).optional() }),
  }),
});
const listPoolsQuery = z.looseObject({ q: z.string().max(255).optional() });
/** What `include=` may name on a pool: its workspaces are embedded. */
const poolIncludes = ['workspaces'];

const createTokenBody = z.object({
  // TFE's documents say `authentication-tokens`; go-tfe sends `agent-tokens`.
  data: z.object({ type: z.enum(['authentication-tokens', 'agent-tokens']), attributes: poolTokenInput.default({ description: '' }) }),
});

/** A pool, with the ids of the workspaces it serves (`workspaceIds`, from workspaceIdsOfPools). */
function presentPool(row: PoolRow, workspaceIds: readonly string[]): Pool {
  return {
    id: row.id,
    type: 'agent-pools',
    attributes: { name: row.name, kind: row.kind, 'created-at': iso(row.created_at), 'agent-count': row.agent_count, 'organization-scoped': true },
    relationships: {
      organization: relation('organizations', row.organization_id),
      workspaces: { data: workspaceIds.map((id) => ({ id, type: 'workspaces' })) },
    },
  };
}

async function presentPools(ctx: ServerContext, rows: readonly PoolRow[]): Promise<Pool[]> {
  const workspaces = await workspaceIdsOfPools(ctx, rows.map((row) => row.id));
  return rows.map((row) => presentPool(row, workspaces.get(row.id) ?? []));
}

/** A pool's document; with `include=workspaces`, its workspaces in `included`. */
async function poolDocument(ctx: ServerContext, row: PoolRow, include: readonly string[] = []): Promise<{ data: Pool; included?: unknown[] }> {
  const [data] = await presentPools(ctx, [row]);
  if (!include.includes('workspaces')) return { data: data! };
  const ids = data!.relationships!.workspaces!.data as { id: string }[];
  const included = [];
  for (const { id } of ids) {
    const workspace = await findWorkspaceById(ctx, id);
    if (workspace) included.push(await presentWorkspace(ctx, await viewOf(ctx, workspace)));
  }
  return { data: data!, included };
}

function presentToken(row: PoolTokenRow, secret?: string): PoolToken {
  return {
    id: row.id,
    type: 'authentication-tokens',
    attributes: {
      description: row.description,
      'created-at': iso(row.created_at),
      'last-used-at': iso(row.last_used_at),
      'revoked-at': iso(row.revoked_at),
      ...(secret ? { token: secret } : {}),
    },
    relationships: { 'agent-pool': relation('agent-pools', row.pool_id) },
  };
}

export function poolRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/agent-pools', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const { q } = parseBody(listPoolsQuery, request.query ?? {});
    const page = paginate(ctx, request, await listPools(ctx, principal, request.params.org, q));
    return { data: await presentPools(ctx, page.items), meta: page.meta, links: page.links };
  });

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/agent-pools', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const org = await requireOrganization(ctx, principal, request.params.org);
    const { name, kind } = parseBody(createPoolBody, request.body).data.attributes;
    return reply.status(201).send(await poolDocument(ctx, await createPool(ctx, org, name, kind)));
  });

  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const include = parseInclude(parseBody(includeQuery, request.query ?? {}).include, poolIncludes);
    return poolDocument(ctx, await requirePool(ctx, principal, request.params.id), include);
  });

  app.patch<{ Params: { id: string } }>('/api/v2/agent-pools/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const pool = await requirePool(ctx, principal, request.params.id);
    const { name, kind } = parseBody(updatePoolBody, request.body).data.attributes;
    if (kind !== undefined && kind !== pool.kind) throw new OutpostError('validation_failed', `a pool's kind is set when it is created; ${pool.name} stays ${pool.kind}`);
    return poolDocument(ctx, name === undefined ? pool : await renamePool(ctx, pool, name));
  });

  app.delete<{ Params: { id: string } }>('/api/v2/agent-pools/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await deletePool(ctx, principal, request.params.id);
    return reply.status(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/v2/agent-pools/:id/authentication-tokens', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const pool = await requirePool(ctx, principal, request.params.id);
    const { description } = parseBody(createTokenBody, request.body ?? { data: { type: 'authentication-tokens' } }).data.attributes;
    const { row, secret } = await createPoolToken(ctx, pool, description);
    return reply.status(201).send({ data: presentToken(row, secret) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id/authentication-tokens', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const page = paginate(ctx, request, await listPoolTokens(ctx, principal, request.params.id));
    return { data: page.items.map((row) => presentToken(row)), meta: page.meta, links: page.links };
  });

  app.get<{ Params: { id: string } }>('/api/v2/authentication-tokens/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentToken(await requirePoolToken(ctx, principal, request.params.id)) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/authentication-tokens/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await revokePoolToken(ctx, principal, request.params.id);
    return reply.status(204).send();
  });
}
