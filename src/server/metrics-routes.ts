// Prometheus /metrics for the control plane (docs/reliability.md lists every
// metric). The queue, job and agent gauges are read from the database when
// scraped, not counted in memory: with several replicas behind a load
// balancer any one of them answers for the whole system, and a restart loses
// nothing. Each server gets its own Registry (not prom-client's global one)
// so several servers in one process (tests, quickstart) stay independent.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { agentStatuses, jobStatuses } from '../protocol/statuses.ts';
import { countAgentsByPoolAndStatus } from './agents/service.ts';
import type { ServerContext } from './context.ts';
import { countJobsByStatus, countQueuedJobsByPool } from './jobs/service.ts';

/** Requests no route matched (404s, undecodable paths) share one label, so probing URLs cannot add series. */
export const unmatchedRoute = 'unmatched';

/** Long-polls are held up to the poll timeout (25 s by default): the buckets reach past it. */
const requestBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createServerRegistry(ctx: ServerContext): { registry: Registry; requestDuration: Histogram<'method' | 'route' | 'status_code'> } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'outpost_jobs',
    help: 'Jobs by state (every job the database holds, finished ones included).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = new Map(jobStatuses.map((status) => [status, 0]));
      for (const row of await countJobsByStatus(ctx)) counts.set(row.status, row.count);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });

  new Gauge({
    name: 'outpost_queue_depth',
    help: 'Jobs queued and not yet claimed, by agent pool id (0 for pools with none).',
    labelNames: ['pool'],
    registers: [registry],
    async collect() {
      // A pool deleted since the last scrape must not linger with its old value.
      this.reset();
      for (const row of await countQueuedJobsByPool(ctx)) this.set({ pool: row.poolId }, row.count);
    },
  });

  new Gauge({
    name: 'outpost_agents',
    help: 'Registered agents by agent pool id and status (every status listed for pools that have agents).',
    labelNames: ['pool', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await countAgentsByPoolAndStatus(ctx);
      for (const pool of new Set(rows.map((row) => row.poolId))) {
        for (const status of agentStatuses) this.set({ pool, status }, 0);
      }
      for (const row of rows) this.set({ pool: row.poolId, status: row.status }, row.count);
    },
  });

  const requestDuration = new Histogram({
    name: 'outpost_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status code, with their duration (agent long-polls included).',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: requestBuckets,
    registers: [registry],
  });
  return { registry, requestDuration };
}

/** Times every request and serves GET /metrics (unauthenticated, like /healthz). */
export function metricsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { registry, requestDuration } = createServerRegistry(ctx);
  app.addHook('onResponse', (request, reply, done) => {
    // The route's pattern (`/api/v2/runs/:id`), never the URL: ids would make a series per run.
    const route = request.routeOptions.url ?? unmatchedRoute;
    requestDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}
