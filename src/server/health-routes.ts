// Liveness and readiness for load balancers and orchestrators.
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.ts';
import { errorBody } from './http/errors.ts';

export function healthRoutes(app: FastifyInstance, ctx: ServerContext, isShuttingDown: () => boolean): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (isShuttingDown()) return reply.status(503).send(errorBody('unavailable', 'the server is shutting down'));
    try {
      await sql`select 1`.execute(ctx.db);
    } catch {
      return reply.status(503).send(errorBody('unavailable', 'the database does not answer'));
    }
    return { status: 'ready' };
  });
}
