// Agents as users see them (TFE: agents under an agent pool).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import type { Agent } from '../../protocol/api-resources.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import { paginate } from '../http/pagination.ts';
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

/** TFE's `filter[last-ping-since]`: an RFC 3339 time (go-tfe sends one with an offset); a bad one is 422. */
const listQuery = z.looseObject({ 'filter[last-ping-since]': z.iso.datetime({ offset: true }).optional() });

export function agentRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id/agents', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const since = parseBody(listQuery, request.query ?? {})['filter[last-ping-since]'];
    const agents = await listAgents(ctx, principal, request.params.id);
    // last_seen_at is kept to lastSeenPrecisionMs (agents/service.ts), so an agent may read a few seconds older than its last ping.
    const page = paginate(ctx, request, since === undefined ? agents : agents.filter((row) => row.last_seen_at >= Date.parse(since)));
    return { data: page.items.map(present), meta: page.meta, links: page.links };
  });

  app.get<{ Params: { id: string } }>('/api/v2/agents/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(await requireAgent(ctx, principal, request.params.id)) };
  });
}
