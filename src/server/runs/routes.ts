// Runs (TFE: runs and their actions).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { findConfigurationVersion } from '../configuration-versions/repo.ts';
import { authenticateApi, type ApiPrincipal } from '../http/auth.ts';
import { iso, parseBody, relation, type ResourceObject } from '../http/json-api.ts';
import { applyIdOf, planIdOf } from '../ids.ts';
import { findWorkspace } from '../workspaces/repo.ts';
import { requireWorkspace } from '../workspaces/routes.ts';
import * as repo from './repo.ts';
import { cancelRun, confirmRun, createRun, discardRun } from './service.ts';

const ref = (type: string) => z.object({ data: z.object({ type: z.literal(type), id: z.string().min(1) }) });
const createRunBody = z.object({
  data: z.object({
    type: z.literal('runs'),
    attributes: z
      .object({
        message: z.string().max(2000).optional(),
        'is-destroy': z.boolean().optional(),
        'plan-only': z.boolean().optional(),
        'auto-apply': z.boolean().optional(),
      })
      .default({}),
    relationships: z.object({ workspace: ref('workspaces'), 'configuration-version': ref('configuration-versions').optional() }),
  }),
});
const listQuery = z.object({ 'page[size]': z.coerce.number().int().min(1).max(100).default(20) });

export function presentRun(row: repo.RunRow): ResourceObject {
  return {
    id: row.id,
    type: 'runs',
    attributes: {
      status: row.status,
      message: row.message,
      'is-destroy': row.is_destroy === 1,
      'plan-only': row.plan_only === 1,
      'auto-apply': row.auto_apply === 1,
      'has-changes': row.has_changes === null ? null : row.has_changes === 1,
      'resource-additions': row.resource_additions,
      'resource-changes': row.resource_changes,
      'resource-destructions': row.resource_destructions,
      'error-code': row.error_code,
      'error-message': row.error_message,
      'created-at': iso(row.created_at),
      'status-timestamps': JSON.parse(row.status_timestamps) as Record<string, string>,
    },
    relationships: {
      workspace: relation('workspaces', row.workspace_id),
      'configuration-version': relation('configuration-versions', row.configuration_version_id),
      plan: relation('plans', planIdOf(row.id)),
      apply: relation('applies', applyIdOf(row.id)),
    },
  };
}

export async function requireRun(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.RunRow> {
  const run = await repo.findRun(ctx.db, id);
  const workspace = run ? await findWorkspace(ctx.db, run.workspace_id) : undefined;
  if (!run || workspace?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `run ${id} not found`);
  return run;
}

export function runRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/v2/runs', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const input = parseBody(createRunBody, request.body).data;
    const workspace = await requireWorkspace(ctx, principal, input.relationships.workspace.data.id);
    const cvId = input.relationships['configuration-version']?.data.id;
    if (!cvId) throw new OutpostError('validation_failed', 'a run needs a configuration-version relationship');
    const cv = await findConfigurationVersion(ctx.db, cvId);
    if (!cv || cv.workspace_id !== workspace.id) throw new OutpostError('not_found', `configuration version ${cvId} not found in this workspace`);
    if (cv.status !== 'uploaded') throw new OutpostError('conflict', `configuration version ${cv.id} is ${cv.status}; upload it first`);
    if (!workspace.pool_id) throw new OutpostError('validation_failed', `workspace ${workspace.name} has no agent pool; assign one first`);
    const attributes = input.attributes;
    const run = await createRun(ctx, {
      workspaceId: workspace.id,
      configurationVersionId: cv.id,
      message: attributes.message ?? 'Queued through the API',
      isDestroy: attributes['is-destroy'] ?? false,
      planOnly: attributes['plan-only'] ?? false,
      autoApply: attributes['auto-apply'] ?? workspace.auto_apply === 1,
    });
    return reply.status(201).send({ data: presentRun(run) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/runs/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentRun(await requireRun(ctx, principal, request.params.id)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/runs', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const { 'page[size]': size } = parseBody(listQuery, request.query);
    return { data: (await repo.listRuns(ctx.db, workspace.id, size)).map(presentRun) };
  });

  const actions = {
    apply: (id: string) => confirmRun(ctx, id),
    discard: (id: string) => discardRun(ctx, id),
    cancel: (id: string) => cancelRun(ctx, id, false),
    'force-cancel': (id: string) => cancelRun(ctx, id, true),
  } as const;
  for (const [name, act] of Object.entries(actions)) {
    app.post<{ Params: { id: string } }>(`/api/v2/runs/:id/actions/${name}`, async (request, reply) => {
      const principal = await authenticateApi(ctx, request);
      const run = await requireRun(ctx, principal, request.params.id);
      await act(run.id);
      return reply.status(202).send();
    });
  }
}
