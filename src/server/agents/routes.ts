// Agents as users see them (TFE: agents under an agent pool).
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import type { Agent } from '../../protocol/api-resources.ts';
import { iso, relation } from '../http/json-api.ts';
import { listAgents, requireAgent, type AgentView } from './service.ts';

function present(row: AgentView): Agent {
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
      'running-jobs': row.running_jobs,
      'registered-at': iso(row.registered_at),
      'last-ping-at': iso(row.last_seen_at),
    },
    relationships: { 'agent-pool': relation('agent-pools', row.pool_id) },
  };
}

export function agentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id/agents', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: (await listAgents(ctx, principal, request.params.id)).map(present) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/agents/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(await requireAgent(ctx, principal, request.params.id)) };
  });
}
