// Plans and applies (TFE: plans, applies) with their logs. `?offset=N`
// reads from a byte offset; `?follow=1` streams until the phase is over,
// woken by appends rather than polling.
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { signedRoutePrefix, type SignedParams } from '../http/signed-urls.ts';
import { logObject, phasePaths, presentPhase } from './presenter.ts';
import { findPhase, followPhaseLog, phaseStillOpen, planJsonOutput, readFramedPhaseLog, readPhaseLog, requirePhase } from './service.ts';

const logQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(64 * 1024 * 1024).default(16 * 1024 * 1024),
  follow: z.enum(['1', 'true', '0', 'false']).optional(),
});

export function logRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const phases = [
    { kind: 'plan', path: phasePaths.plan },
    { kind: 'apply', path: phasePaths.apply },
  ] as const;

  for (const phase of phases) {
    app.get<{ Params: { id: string } }>(`/api/v2/${phase.path}/:id`, async (request) => {
      const principal = await authenticateApi(ctx, request);
      const { run, job } = await requirePhase(ctx, principal, request.params.id, phase.kind);
      return { data: presentPhase(ctx, run, job, phase.kind) };
    });

    // The pre-signed log URL: TFE's framing, no token. It stays good while
    // the phase runs, however long that takes (see signed-urls.ts).
    app.get<{ Params: SignedParams & { id: string } }>(`${signedRoutePrefix}${phase.path}/:id/logs`, async (request, reply) => {
      const { id } = request.params;
      await ctx.signer.verifyWhileLive('GET', logObject(phase.kind, id), request.params.grant, ctx.now(), () => phaseStillOpen(ctx, id, phase.kind));
      const run = await findPhase(ctx, id, phase.kind);
      const query = parseBody(logQuery, request.query);
      const data = await readFramedPhaseLog(ctx, run.id, phase.kind, query.offset, query.limit);
      return reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send(data);
    });

    app.get<{ Params: { id: string } }>(`/api/v2/${phase.path}/:id/logs`, async (request, reply) => {
      const principal = await authenticateApi(ctx, request);
      const { run } = await requirePhase(ctx, principal, request.params.id, phase.kind);
      const query = parseBody(logQuery, request.query);
      if (query.follow !== '1' && query.follow !== 'true') {
        const data = await readPhaseLog(ctx, run, phase.kind, query.offset, query.limit);
        return reply.header('content-type', 'text/plain; charset=utf-8').send(data);
      }
      const out = new PassThrough();
      const gone = new AbortController();
      reply.raw.on('close', () => gone.abort());
      // Send the headers now: a run may wait minutes for an agent before its
      // first byte, and clients would time out waiting for headers.
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      reply.raw.flushHeaders();
      out.pipe(reply.raw);
      await followPhaseLog(ctx, run.id, phase.kind, query.offset, out, gone.signal);
      return reply;
    });
  }

  app.get<{ Params: { id: string } }>('/api/v2/plans/:id/json-output', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    return reply.header('content-type', 'application/json').send(await planJsonOutput(ctx, principal, request.params.id));
  });
}
