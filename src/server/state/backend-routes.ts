// The engine's http state backend, authenticated with the job token. It
// speaks plain HTTP, not JSON:API: the state document itself, and LockInfo
// documents for locking. Bodies arrive as the bytes the engine sent.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { agentPaths } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { authenticateJob } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { bodyBytes, rawBodyRoutes } from '../http/raw-body.ts';
import { currentStateForJob, lockStateForJob, requireMayLockState, saveStateFromJob, unlockStateForJob } from './service.ts';

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
    const state = await currentStateForJob(ctx, await authenticateJob(ctx, request));
    if (!state) return reply.status(204).send();
    return reply.header('content-type', 'application/json').send(state);
  });

  rawBodyRoutes(app, (scope) => {
    scope.post<{ Querystring: { ID?: string } }>(agentPaths.jobState, { bodyLimit: ctx.config.maxStateMb * 1024 * 1024 }, async (request, reply) => {
      await saveStateFromJob(ctx, await authenticateJob(ctx, request), request.query.ID, bodyBytes(request.body));
      return reply.status(200).send();
    });

    scope.post(agentPaths.jobStateLock, async (request, reply) => {
      const jobScope = await authenticateJob(ctx, request);
      requireMayLockState(jobScope, 'lock');
      const holder = await lockStateForJob(ctx, jobScope, parseLockInfo(request.body));
      // The engine reads the holder from a 423 and shows it to the user.
      if (holder) return reply.status(423).header('content-type', 'application/json').send(holder);
      return reply.status(200).send();
    });

    scope.delete(agentPaths.jobStateLock, async (request, reply) => {
      const jobScope = await authenticateJob(ctx, request);
      requireMayLockState(jobScope, 'unlock');
      await unlockStateForJob(ctx, jobScope, parseLockInfo(request.body).ID);
      return reply.status(200).send();
    });
  });
}
