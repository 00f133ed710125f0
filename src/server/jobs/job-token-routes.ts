// Endpoints the job operation calls from inside its sandbox, authenticated
// with the job token. The token reaches only its own job's run, workspace,
// configuration version, plan artifacts and state.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { agentPaths, jobResult, type JobSpec } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import { authenticateJob } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { bodyBytes, rawBodyRoutes } from '../http/raw-body.ts';
import { findRun } from '../runs/repo.ts';
import { listVariables } from '../variables/repo.ts';
import { findWorkspace } from '../workspaces/repo.ts';
import { recordResult } from './service.ts';
import type { JobRow } from './repo.ts';

export async function jobContext(ctx: ServerContext, request: FastifyRequest) {
  const job = await authenticateJob(ctx, request);
  const run = await findRun(ctx.db, job.run_id);
  const workspace = run ? await findWorkspace(ctx.db, run.workspace_id) : undefined;
  if (!run || !workspace) throw new OutpostError('not_found', 'the job\'s run no longer exists');
  return { job, run, workspace };
}

async function sendBlob(ctx: ServerContext, reply: FastifyReply, key: string, what: string, type: string) {
  const blob = await ctx.blobs.stream(key);
  if (!blob) throw new OutpostError('not_found', `${what} not found`);
  return reply.header('content-type', type).header('content-length', blob.size).send(blob.stream);
}

function requireKind(job: JobRow, kind: 'plan' | 'apply', what: string): void {
  if (job.kind !== kind) throw new OutpostError('forbidden', `only ${kind} jobs may ${what}`);
}

export function jobTokenRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const uploadLimit = { bodyLimit: ctx.config.maxUploadMb * 1024 * 1024 };

  app.get(agentPaths.jobSpec, async (request): Promise<JobSpec> => {
    const { job, run, workspace } = await jobContext(ctx, request);
    const variables = await listVariables(ctx.db, workspace.id);
    return {
      job_id: job.id,
      run_id: run.id,
      kind: job.kind,
      is_destroy: run.is_destroy === 1,
      plan_only: run.plan_only === 1,
      workspace: { id: workspace.id, name: workspace.name, working_directory: workspace.working_directory },
      engine: { name: workspace.engine, version: workspace.engine_version },
      variables: variables.map((v) => ({
        key: v.key,
        value: v.sensitive === 1 ? ctx.sealer.open(v.value) : v.value,
        category: v.category,
        hcl: v.hcl === 1,
        sensitive: v.sensitive === 1,
      })),
    };
  });

  app.get(agentPaths.jobConfiguration, async (request, reply) => {
    const { run } = await jobContext(ctx, request);
    return sendBlob(ctx, reply, blobKeys.configuration(run.configuration_version_id), 'configuration version', 'application/gzip');
  });

  // Plans are stored exactly as uploaded (the JSON one is sent as application/json).
  rawBodyRoutes(app, (scope) => {
    scope.put(agentPaths.jobPlan, uploadLimit, async (request, reply) => {
      const { job, run } = await jobContext(ctx, request);
      requireKind(job, 'plan', 'upload a plan');
      await ctx.blobs.put(blobKeys.plan(run.id), bodyBytes(request.body));
      return reply.status(204).send();
    });

    scope.put(agentPaths.jobPlanJson, uploadLimit, async (request, reply) => {
      const { job, run } = await jobContext(ctx, request);
      requireKind(job, 'plan', 'upload a plan');
      await ctx.blobs.put(blobKeys.planJson(run.id), bodyBytes(request.body));
      return reply.status(204).send();
    });
  });

  app.get(agentPaths.jobPlan, async (request, reply) => {
    const { job, run } = await jobContext(ctx, request);
    requireKind(job, 'apply', 'download the saved plan');
    return sendBlob(ctx, reply, blobKeys.plan(run.id), 'saved plan', 'application/octet-stream');
  });

  app.post(agentPaths.jobResult, async (request, reply) => {
    const { job } = await jobContext(ctx, request);
    await recordResult(ctx, job, parseBody(jobResult, request.body));
    return reply.status(204).send();
  });
}
