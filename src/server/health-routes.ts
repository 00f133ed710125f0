// Liveness and readiness for load balancers and orchestrators.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.ts';
import { pingDatabase } from './db/database.ts';
import { errorBody } from './http/errors.ts';

export function healthRoutes(app: FastifyInstance, ctx: ServerContext, isShuttingDown: () => boolean): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (isShuttingDown()) return reply.status(503).send(errorBody('unavailable', 'the server is shutting down'));
    try {
      await pingDatabase(ctx.db);
    } catch {
      return reply.status(503).send(errorBody('unavailable', 'the database does not answer'));
    }
    return { status: 'ready' };
  });
}
