// Plans and applies (TFE: plans, applies) with their logs. `?offset=N`
// reads from a byte offset; `?follow=1` streams until the phase is over,
// woken by appends rather than polling.
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import { isFinalRunStatus, type JobKind, type RunStatus } from '../../protocol/statuses.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody, relation, type ResourceObject } from '../http/json-api.ts';
import { runIdOfPhase } from '../ids.ts';
import { findPhaseJob } from '../jobs/repo.ts';
import { findRun } from '../runs/repo.ts';
import { phaseStatus } from '../runs/lifecycle.ts';
import { requireRun } from '../runs/routes.ts';
import { readLog } from './repo.ts';

const logQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(64 * 1024 * 1024).default(16 * 1024 * 1024),
  follow: z.enum(['1', 'true', '0', 'false']).optional(),
});

/** Whether a phase can still produce log output. */
function phaseOpen(kind: JobKind, status: RunStatus): boolean {
  if (isFinalRunStatus(status)) return false;
  return kind === 'plan' ? ['pending', 'plan_queued', 'planning'].includes(status) : true;
}

export function logRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const phases = [
    { kind: 'plan', path: 'plans', type: 'plans' },
    { kind: 'apply', path: 'applies', type: 'applies' },
  ] as const;

  for (const phase of phases) {
    const runOf = async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const principal = await authenticateApi(ctx, request);
      const runId = runIdOfPhase(request.params.id);
      if (!runId || !request.params.id.startsWith(phase.path === 'plans' ? 'plan-' : 'apply-')) {
        throw new OutpostError('not_found', `${phase.type.slice(0, -1)} ${request.params.id} not found`);
      }
      return requireRun(ctx, principal, runId);
    };

    app.get<{ Params: { id: string } }>(`/api/v2/${phase.path}/:id`, async (request) => {
      const run = await runOf(request);
      const job = await findPhaseJob(ctx.db, run.id, phase.kind);
      const resource: ResourceObject = {
        id: request.params.id,
        type: phase.type,
        attributes: {
          status: phaseStatus(run.status, phase.kind, job?.status),
          'has-changes': phase.kind === 'plan' && run.has_changes !== null ? run.has_changes === 1 : null,
          'resource-additions': run.resource_additions,
          'resource-changes': run.resource_changes,
          'resource-destructions': run.resource_destructions,
          'log-read-url': `${ctx.publicUrl}/api/v2/${phase.path}/${request.params.id}/logs`,
        },
        relationships: { run: relation('runs', run.id) },
      };
      return { data: resource };
    });

    app.get<{ Params: { id: string } }>(`/api/v2/${phase.path}/:id/logs`, async (request, reply) => {
      const run = await runOf(request);
      const query = parseBody(logQuery, request.query);
      if (query.follow !== '1' && query.follow !== 'true') {
        const data = await readLog(ctx.db, run.id, phase.kind, query.offset, query.limit);
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
      await followLog(ctx, run.id, phase.kind, query.offset, out, gone.signal);
      return reply;
    });
  }

  app.get<{ Params: { id: string } }>('/api/v2/plans/:id/json-output', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const runId = runIdOfPhase(request.params.id);
    if (!runId) throw new OutpostError('not_found', `plan ${request.params.id} not found`);
    const run = await requireRun(ctx, principal, runId);
    const blob = await ctx.blobs.get(blobKeys.planJson(run.id));
    if (!blob) throw new OutpostError('not_found', 'this plan has no JSON output (yet)');
    return reply.header('content-type', 'application/json').send(blob);
  });
}

async function followLog(ctx: ServerContext, runId: string, kind: JobKind, from: number, out: PassThrough, gone: AbortSignal): Promise<void> {
  let offset = from;
  try {
    while (!gone.aborted) {
      const run = await findRun(ctx.db, runId);
      const open = run ? phaseOpen(kind, run.status) : false;
      // Read after checking status: anything appended before the phase
      // closed is then guaranteed to be in this read.
      const data = await readLog(ctx.db, runId, kind, offset, 4 * 1024 * 1024);
      if (data.length > 0) {
        offset += data.length;
        // A client that stops reading and then disconnects never drains the
        // stream: waiting for 'drain' alone would park this handler forever.
        if (!out.write(data)) await once(out, 'drain', { signal: gone }).catch(() => undefined);
        continue;
      }
      if (!open) break;
      if ((await ctx.notifier.wait([`log:${runId}`, `run:${runId}`], 15_000, gone)) === 'aborted') break;
    }
  } catch (error) {
    ctx.logger.error({ err: error, run: runId }, 'log stream failed');
  } finally {
    // Nobody will read what is still buffered for a client that left.
    if (gone.aborted) out.destroy();
    else out.end();
    ctx.logger.debug({ run: runId, phase: kind, bytes: offset - from, client_gone: gone.aborted }, 'log follow ended');
  }
}
