// Agent pools and their tokens (TFE: agent-pools, authentication-tokens).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { uniqueWrite } from '../db/unique-violation.ts';
import { registeredAgentIdsOfToken } from '../agents/repo.ts';
import { authenticateApi, type ApiPrincipal } from '../http/auth.ts';
import { iso, parseBody, relation, type ResourceObject } from '../http/json-api.ts';
import { hashToken, newId, newPoolToken } from '../ids.ts';
import { requireOrganization } from '../organizations/service.ts';
import * as repo from './repo.ts';

const nameSchema = z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, -, _ and .');

const createPool = z.object({ data: z.object({ type: z.literal('agent-pools'), attributes: z.object({ name: nameSchema }) }) });
const createToken = z.object({
  data: z.object({
    type: z.literal('authentication-tokens'),
    attributes: z.object({ description: z.string().max(256).default('') }).default({ description: '' }),
  }),
});

function presentPool(row: repo.PoolRow): ResourceObject {
  return {
    id: row.id,
    type: 'agent-pools',
    attributes: { name: row.name, 'created-at': iso(row.created_at), 'agent-count': row.agent_count, 'organization-scoped': true },
    relationships: { organization: relation('organizations', row.organization_id) },
  };
}

function presentToken(row: repo.PoolTokenRow, secret?: string): ResourceObject {
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

export async function requirePool(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.PoolRow> {
  const pool = await repo.findPool(ctx.db, id);
  if (!pool || pool.organization_id !== principal.organizationId) throw new OutpostError('not_found', `agent pool ${id} not found`);
  return pool;
}

export function poolRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/agent-pools', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const orgId = await requireOrganization(ctx, request.params.org);
    if (orgId !== principal.organizationId) throw new OutpostError('not_found', `organization ${request.params.org} not found`);
    return { data: (await repo.listPools(ctx.db, orgId)).map(presentPool) };
  });

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/agent-pools', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const orgId = await requireOrganization(ctx, request.params.org);
    if (orgId !== principal.organizationId) throw new OutpostError('not_found', `organization ${request.params.org} not found`);
    const { name } = parseBody(createPool, request.body).data.attributes;
    if (await repo.findPoolByName(ctx.db, orgId, name)) throw new OutpostError('already_exists', `agent pool ${name} already exists`);
    const id = newId('apool');
    await uniqueWrite(() => repo.insertPool(ctx.db, { id, organization_id: orgId, name, created_at: ctx.now() }), `agent pool ${name} already exists`);
    return reply.status(201).send({ data: presentPool((await repo.findPool(ctx.db, id))!) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentPool(await requirePool(ctx, principal, request.params.id)) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/agent-pools/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const pool = await requirePool(ctx, principal, request.params.id);
    if ((await repo.countWorkspacesUsingPool(ctx.db, pool.id)) > 0) {
      throw new OutpostError('conflict', `agent pool ${pool.name} is used by workspaces; move them to another pool first`);
    }
    await repo.deletePool(ctx.db, pool.id);
    return reply.status(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/v2/agent-pools/:id/authentication-tokens', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const pool = await requirePool(ctx, principal, request.params.id);
    const { description } = parseBody(createToken, request.body ?? { data: { type: 'authentication-tokens' } }).data.attributes;
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
    return reply.status(201).send({ data: presentToken(row, secret) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id/authentication-tokens', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const pool = await requirePool(ctx, principal, request.params.id);
    return { data: (await repo.listPoolTokens(ctx.db, pool.id)).map((row) => presentToken(row)) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/authentication-tokens/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const token = await repo.findPoolToken(ctx.db, request.params.id);
    if (!token) throw new OutpostError('not_found', `token ${request.params.id} not found`);
    await requirePool(ctx, principal, token.pool_id);
    await repo.revokePoolToken(ctx.db, token.id, ctx.now());
    // Wake the long-polls of this token's agents, idle or busy (a busy agent
    // waits on its own topic only): each re-authenticates and ends with 401
    // token_revoked at once.
    for (const agentId of await registeredAgentIdsOfToken(ctx.db, token.id)) ctx.notifier.notify(`agent:${agentId}`);
    return reply.status(204).send();
  });
}
