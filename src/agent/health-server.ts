// The agent's health and metrics listener (OUTPOST_AGENT_HEALTH_PORT): plain
// HTTP for orchestrators and Prometheus. It is not the agent protocol: agents
// still only connect out to the control plane, and nothing here reveals job
// data or accepts a command.
//
//   /healthz  the process is alive and its event loop answers: always 200
//   /readyz   200 only while the agent is registered and takes work; 503
//             with the reason while starting, draining or stopped, so a
//             rollout waits for a new agent to register and a load
//             balancer or `kubectl get pods` shows a draining agent
//   /metrics  Prometheus text (agent-metrics.ts)
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import type { AgentLifecycle } from './agent.ts';
import type { AgentMetrics } from './agent-metrics.ts';

export interface HealthServerOptions {
  host: string;
  port: number;
  status: () => AgentLifecycle;
  metrics: AgentMetrics;
  logger: Logger;
}

export interface HealthServer {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

const notReady: Record<Exclude<AgentLifecycle, 'ready'>, string> = {
  starting: 'the agent has not registered with the control plane yet',
  draining: 'the agent is stopping: it takes no new jobs and finishes the ones it runs',
  stopped: 'the agent has stopped',
};

/** The readiness answer for a status: what /readyz sends. */
export function readiness(status: AgentLifecycle): { code: 200 | 503; body: { status: AgentLifecycle; reason?: string } } {
  if (status === 'ready') return { code: 200, body: { status } };
  return { code: 503, body: { status, reason: notReady[status] } };
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'health' }, { level: 'warn' }) as FastifyBaseLogger,
    // Probes every few seconds would flood the log.
    logController: new LogController({ disableRequestLogging: true }),
    // A probe must never hold the agent's shutdown.
    forceCloseConnections: true,
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const { code, body } = readiness(options.status());
    return reply.code(code).send(body);
  });
  app.get('/metrics', async (_request, reply) => {
    const registry = options.metrics.registry;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${shownHost}:${port}`;
  options.logger.info({ url }, 'health and metrics listening');
  return { url, close: () => app.close() };
}
