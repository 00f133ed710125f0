// Endpoints the job operation calls from inside its sandbox, authenticated
// with the job token. The token reaches only its own job's run, workspace,
// configuration version, plan artifacts and state.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import { agentPaths, jobResult, type JobSpec } from '../../protocol/agent-api.ts';
import type { ServerContext } from '../context.ts';
import { authenticateJob } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { bodyBytes, rawBodyRoutes } from '../http/raw-body.ts';
import { configurationArchiveOf, jobSpecOf, recordResult, savedPlanOf, storePlan, storePlanJson } from './service.ts';

function sendBlob(reply: FastifyReply, blob: { stream: Readable; size: number }, type: string) {
  return reply.header('content-type', type).header('content-length', blob.size).send(blob.stream);
}

export function jobTokenRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const uploadLimit = { bodyLimit: ctx.config.maxUploadMb * 1024 * 1024 };

  app.get(agentPaths.jobSpec, async (request): Promise<JobSpec> => jobSpecOf(ctx, await authenticateJob(ctx, request)));

  app.get(agentPaths.jobConfiguration, async (request, reply) => {
    return sendBlob(reply, await configurationArchiveOf(ctx, await authenticateJob(ctx, request)), 'application/gzip');
  });

  // Plans are stored exactly as uploaded (the JSON one is sent as application/json).
  rawBodyRoutes(app, (scope) => {
    scope.put(agentPaths.jobPlan, uploadLimit, async (request, reply) => {
      await storePlan(ctx, await authenticateJob(ctx, request), bodyBytes(request.body));
      return reply.status(204).send();
    });

    scope.put(agentPaths.jobPlanJson, uploadLimit, async (request, reply) => {
      await storePlanJson(ctx, await authenticateJob(ctx, request), bodyBytes(request.body));
      return reply.status(204).send();
    });
  });

  app.get(agentPaths.jobPlan, async (request, reply) => {
    return sendBlob(reply, await savedPlanOf(ctx, await authenticateJob(ctx, request)), 'application/octet-stream');
  });

  app.post(agentPaths.jobResult, async (request, reply) => {
    const scope = await authenticateJob(ctx, request);
    await recordResult(ctx, scope, parseBody(jobResult, request.body));
    return reply.status(204).send();
  });
}
