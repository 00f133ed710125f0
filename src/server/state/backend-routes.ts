// The engine's http state backend, authenticated with the job token. It
// speaks plain HTTP, not JSON:API: the state document itself, and LockInfo
// documents for locking. Bodies arrive as the bytes the engine sent.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { agentPaths } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { parseBody } from '../http/json-api.ts';
import { bodyBytes, rawBodyRoutes } from '../http/raw-body.ts';
import { jobContext } from '../jobs/job-token-routes.ts';
import { lockState, loadCurrentState, saveState, unlockState } from './service.ts';

// OpenTofu's statemgr.LockInfo. Only these fields are kept: the stored copy
// is shown to other jobs of the workspace, so nothing else may ride along.
const text = z.string().max(4096).optional();
const lockInfo = z.object({ ID: z.string().min(1).max(256), Operation: text, Info: text, Who: text, Version: text, Created: text, Path: text });

function parseLockInfo(body: unknown) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyBytes(body).toString('utf8'));
  } catch {
    throw new OutpostError('invalid_request', 'the lock info is not valid JSON');
  }
  return parseBody(lockInfo, parsed);
}

export function stateBackendRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get(agentPaths.jobState, async (request, reply) => {
    const { workspace } = await jobContext(ctx, request);
    const state = await loadCurrentState(ctx, workspace.id);
    if (!state) return reply.status(204).send();
    return reply.header('content-type', 'application/json').send(state);
  });

  rawBodyRoutes(app, (scope) => {
    scope.post<{ Querystring: { ID?: string } }>(agentPaths.jobState, { bodyLimit: ctx.config.maxStateMb * 1024 * 1024 }, async (request, reply) => {
      const { job, run, workspace } = await jobContext(ctx, request);
      // Only an apply changes state; a plan (which OpenTofu never persists) may not.
      if (run.plan_only === 1 || job.kind !== 'apply') throw new OutpostError('forbidden', 'only an apply job may write state');
      await saveState(ctx, workspace.id, { runId: run.id, jobId: job.id, lockId: request.query.ID }, bodyBytes(request.body));
      return reply.status(200).send();
    });

    scope.post(agentPaths.jobStateLock, async (request, reply) => {
      const { job, run, workspace } = await jobContext(ctx, request);
      if (run.plan_only === 1) throw new OutpostError('forbidden', 'a plan-only run may not lock state');
      const holder = await lockState(ctx, workspace.id, parseLockInfo(request.body), job.id);
      // The engine reads the holder from a 423 and shows it to the user.
      if (holder) return reply.status(423).header('content-type', 'application/json').send(holder);
      return reply.status(200).send();
    });

    scope.delete(agentPaths.jobStateLock, async (request, reply) => {
      const { job, run, workspace } = await jobContext(ctx, request);
      if (run.plan_only === 1) throw new OutpostError('forbidden', 'a plan-only run may not unlock state');
      await unlockState(ctx, workspace.id, parseLockInfo(request.body).ID, job.id);
      return reply.status(200).send();
    });
  });
}
