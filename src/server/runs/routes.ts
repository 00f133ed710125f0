// Runs (TFE: runs and their actions).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ingressOf } from '../configuration-versions/service.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { runInput } from '../../protocol/api-inputs.ts';
import type { Run } from '../../protocol/api-resources.ts';
import { isErrorCode } from '../../protocol/errors.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import { applyIdOf, planIdOf } from '../ids.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import type { RunRow } from './repo.ts';
import { cancelRun, confirmRun, discardRun, listRuns, requestRun, requireRun } from './service.ts';

const ref = (type: string) => z.object({ data: z.object({ type: z.literal(type), id: z.string().min(1) }) });
const createRunBody = z.object({
  data: z.object({
    type: z.literal('runs'),
    attributes: runInput.default({}),
    relationships: z.object({ workspace: ref('workspaces'), 'configuration-version': ref('configuration-versions').optional() }),
  }),
});
const listQuery = z.object({ 'page[size]': z.coerce.number().int().min(1).max(100).default(20) });

/** Runs as the API shows them, each with the commit it is of (for runs from version control). */
async function presentAll(ctx: ServerContext, rows: RunRow[]): Promise<Run[]> {
  const commits = await ingressOf(ctx, rows.map((row) => row.configuration_version_id));
  return rows.map((row) => {
    const run = present(row);
    const ingress = commits.get(row.configuration_version_id) ?? null;
    return { ...run, attributes: { ...run.attributes, source: ingress ? 'tfe-configuration-version' : 'tfe-api', 'ingress-attributes': ingress } };
  });
}

function present(row: RunRow): Run {
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
      // Codes are written from the catalogue; one this server does not know (written by a newer replica) shows as internal.
      'error-code': row.error_code === null ? null : isErrorCode(row.error_code) ? row.error_code : 'internal',
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

export function runRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/v2/runs', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const { attributes, relationships } = parseBody(createRunBody, request.body).data;
    const run = await requestRun(ctx, principal, {
      workspaceId: relationships.workspace.data.id,
      configurationVersionId: relationships['configuration-version']?.data.id,
      message: attributes.message,
      isDestroy: attributes['is-destroy'],
      planOnly: attributes['plan-only'],
      autoApply: attributes['auto-apply'],
    });
    return reply.status(201).send({ data: (await presentAll(ctx, [run]))[0] });
  });

  app.get<{ Params: { id: string } }>('/api/v2/runs/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: (await presentAll(ctx, [await requireRun(ctx, principal, request.params.id)]))[0] };
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/runs', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const { 'page[size]': size } = parseBody(listQuery, request.query);
    return { data: await presentAll(ctx, await listRuns(ctx, workspace, size)) };
  });

  const actions: Record<string, (principal: ApiPrincipal, id: string) => Promise<void>> = {
    apply: (principal, id) => confirmRun(ctx, principal, id),
    discard: (principal, id) => discardRun(ctx, principal, id),
    cancel: (principal, id) => cancelRun(ctx, principal, id, false),
    'force-cancel': (principal, id) => cancelRun(ctx, principal, id, true),
  };
  for (const [name, act] of Object.entries(actions)) {
    app.post<{ Params: { id: string } }>(`/api/v2/runs/:id/actions/${name}`, async (request, reply) => {
      await act(await authenticateApi(ctx, request), request.params.id);
      return reply.status(202).send();
    });
  }
}
