// Agent pools and their tokens (TFE: agent-pools, authentication-tokens).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { poolInput, poolTokenInput, requestOf } from '../../protocol/api-inputs.ts';
import type { Pool, PoolToken } from '../../protocol/api-resources.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import { requireOrganization } from '../organizations/service.ts';
import type { PoolRow, PoolTokenRow } from './repo.ts';
import { createPool, createPoolToken, deletePool, listPools, listPoolTokens, requirePool, revokePoolToken } from './service.ts';

const createPoolBody = requestOf('agent-pools', poolInput);
const createTokenBody = z.object({
  data: z.object({ type: z.literal('authentication-tokens'), attributes: poolTokenInput.default({ description: '' }) }),
});

function presentPool(row: PoolRow): Pool {
  return {
    id: row.id,
    type: 'agent-pools',
    attributes: { name: row.name, kind: row.kind, 'created-at': iso(row.created_at), 'agent-count': row.agent_count, 'organization-scoped': true },
    relationships: { organization: relation('organizations', row.organization_id) },
  };
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
    return { data: (await listPools(ctx, principal, request.params.org)).map(presentPool) };
  });

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/agent-pools', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const org = await requireOrganization(ctx, principal, request.params.org);
    const { name, kind } = parseBody(createPoolBody, request.body).data.attributes;
    return reply.status(201).send({ data: presentPool(await createPool(ctx, org, name, kind)) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentPool(await requirePool(ctx, principal, request.params.id)) };
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
    return { data: (await listPoolTokens(ctx, principal, request.params.id)).map((row) => presentToken(row)) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/authentication-tokens/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await revokePoolToken(ctx, principal, request.params.id);
    return reply.status(204).send();
  });
}
