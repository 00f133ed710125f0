// Agents as users see them (TFE: agents under an agent pool).
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { iso, relation, type ResourceObject } from '../http/json-api.ts';
import { requirePool } from '../pools/routes.ts';
import { findPool } from '../pools/repo.ts';
import * as repo from './repo.ts';

function present(row: repo.AgentRow & { running_jobs?: number }): ResourceObject {
  return {
    id: row.id,
    type: 'agents',
    attributes: {
      name: row.name,
      status: row.status,
      version: row.version,
      driver: row.driver,
      concurrency: row.concurrency,
      single: row.single === 1,
      'running-jobs': row.running_jobs ?? 0,
      'registered-at': iso(row.registered_at),
      'last-ping-at': iso(row.last_seen_at),
    },
    relationships: { 'agent-pool': relation('agent-pools', row.pool_id) },
  };
}

export function agentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id/agents', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const pool = await requirePool(ctx, principal, request.params.id);
    return { data: (await repo.listAgents(ctx.db, pool.id)).map(present) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/agents/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const agent = await repo.findAgent(ctx.db, request.params.id);
    const pool = agent ? await findPool(ctx.db, agent.pool_id) : undefined;
    if (!agent || pool?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `agent ${request.params.id} not found`);
    const running = (await repo.listAgents(ctx.db, agent.pool_id)).find((row) => row.id === agent.id)?.running_jobs ?? 0;
    return { data: present({ ...agent, running_jobs: running }) };
  });
}
