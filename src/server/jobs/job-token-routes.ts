// Endpoints the job operation calls from inside its sandbox, authenticated
// with the job token. The token reaches only its own job's run, workspace,
// configuration version, plan artifacts and state.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { agentPaths, jobResult, type JobSpec } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import { authenticateJob } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { findRun } from '../runs/repo.ts';
import { lockState, loadCurrentState, saveState, unlockState } from '../state/service.ts';
import { listVariables } from '../variables/repo.ts';
import { findWorkspace } from '../workspaces/repo.ts';
import { recordResult } from './service.ts';
import type { JobRow } from './repo.ts';

const lockInfo = z.looseObject({ ID: z.string().min(1).max(256) });

async function jobContext(ctx: ServerContext, request: FastifyRequest) {
  const job = await authenticateJob(ctx, request);
  const run = await findRun(ctx.db, job.run_id);
  const workspace = run ? await findWorkspace(ctx.db, run.workspace_id) : undefined;
  if (!run || !workspace) throw new OutpostError('not_found', 'the job\'s run no longer exists');
  return { job, run, workspace };
}

function rawBody(request: FastifyRequest): Buffer {
  if (Buffer.isBuffer(request.body)) return request.body;
  if (typeof request.body === 'string') return Buffer.from(request.body);
  if (request.body && typeof request.body === 'object') return Buffer.from(JSON.stringify(request.body));
  return Buffer.alloc(0);
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
  const stateLimit = { bodyLimit: ctx.config.maxStateMb * 1024 * 1024 };

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

  app.put(agentPaths.jobPlan, uploadLimit, async (request, reply) => {
    const { job, run } = await jobContext(ctx, request);
    requireKind(job, 'plan', 'upload a plan');
    await ctx.blobs.put(blobKeys.plan(run.id), rawBody(request));
    return reply.status(204).send();
  });

  app.put(agentPaths.jobPlanJson, uploadLimit, async (request, reply) => {
    const { job, run } = await jobContext(ctx, request);
    requireKind(job, 'plan', 'upload a plan');
    await ctx.blobs.put(blobKeys.planJson(run.id), rawBody(request));
    return reply.status(204).send();
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

  // The engine's http backend. It speaks plain HTTP, not JSON:API: the state
  // document itself, and LockInfo documents for locking.
  app.get(agentPaths.jobState, async (request, reply) => {
    const { workspace } = await jobContext(ctx, request);
    const state = await loadCurrentState(ctx, workspace.id);
    if (!state) return reply.status(204).send();
    return reply.header('content-type', 'application/json').send(state);
  });

  app.post<{ Querystring: { ID?: string } }>(agentPaths.jobState, stateLimit, async (request, reply) => {
    const { job, run, workspace } = await jobContext(ctx, request);
    // Only an apply changes state; a plan (which OpenTofu never persists) may not.
    if (run.plan_only === 1 || job.kind !== 'apply') throw new OutpostError('forbidden', 'only an apply job may write state');
    await saveState(ctx, workspace.id, { runId: run.id, jobId: job.id, lockId: request.query.ID }, rawBody(request));
    return reply.status(200).send();
  });

  app.post(agentPaths.jobStateLock, async (request, reply) => {
    const { job, run, workspace } = await jobContext(ctx, request);
    if (run.plan_only === 1) throw new OutpostError('forbidden', 'a plan-only run may not lock state');
    const info = parseBody(lockInfo, request.body);
    const holder = await lockState(ctx, workspace.id, info, job.id);
    if (holder) return reply.status(423).header('content-type', 'application/json').send(holder);
    return reply.status(200).send();
  });

  app.delete(agentPaths.jobStateLock, async (request, reply) => {
    const { workspace } = await jobContext(ctx, request);
    const info = parseBody(lockInfo, request.body);
    const holder = await unlockState(ctx, workspace.id, info.ID);
    if (holder) return reply.status(409).header('content-type', 'application/json').send(holder);
    return reply.status(200).send();
  });
}
