// Runs (TFE: runs, their actions and events). Lists take TFE's filters and
// pagination; `include=` embeds the workspace, plan, apply and
// configuration version, as go-tfe asks for them.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { runInput } from '../../protocol/api-inputs.ts';
import type { Run } from '../../protocol/api-resources.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { runStatuses } from '../../protocol/statuses.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { paginate } from '../http/pagination.ts';
import { runSourceOf, tfeClientOf } from '../http/tfe-clients.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import { includedOf, includeQuery, parseInclude, runIncludes } from './included.ts';
import { planOptionsOf } from './options.ts';
import { presentRunEvents, presentRuns } from './presenter.ts';
import type { RunRow } from './repo.ts';
import { cancelRun, confirmRun, discardRun, listRuns, requestRun, requireRun, runCapacityOf, runQueueOf } from './service.ts';

const ref = (type: string) => z.object({ data: z.object({ type: z.literal(type), id: z.string().min(1) }) });
const createRunBody = z.object({
  data: z.object({
    type: z.literal('runs'),
    attributes: runInput.default({}),
    // go-tfe sends `configuration-version: {data: null}` when none is given: the newest upload then runs.
    relationships: z.object({ workspace: ref('workspaces'), 'configuration-version': ref('configuration-versions').or(z.object({ data: z.null() })).optional() }),
  }),
});

const csv = (allowed?: readonly string[]) =>
  z
    .string()
    .max(1024)
    .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item !== ''))
    .refine((items) => !allowed || items.every((item) => allowed.includes(item)), `expected a comma-separated list of: ${allowed?.join(', ') ?? ''}`)
    .optional();
const operations = ['plan_only', 'plan_and_apply', 'destroy', 'refresh_only'] as const;
const listQuery = includeQuery.extend({
  'filter[status]': csv(runStatuses),
  'filter[operation]': csv(operations),
  'filter[source]': csv(),
});

/** TFE's operation of a run, for `filter[operation]`. */
function operationOf(row: RunRow): (typeof operations)[number] {
  if (row.is_destroy === 1) return 'destroy';
  if (planOptionsOf(row.plan_options).refresh_only) return 'refresh_only';
  return row.plan_only === 1 ? 'plan_only' : 'plan_and_apply';
}

async function runDocument(ctx: ServerContext, request: FastifyRequest, row: RunRow): Promise<{ data: Run; included?: unknown[] }> {
  const include = parseInclude(parseBody(includeQuery, request.query ?? {}).include, runIncludes);
  const [data] = (await presentRuns(ctx, [row])) as [Run];
  const included = await includedOf(ctx, [row], include);
  return included.length > 0 ? { data, included } : { data };
}

export function runRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/v2/runs', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const { attributes, relationships } = parseBody(createRunBody, request.body).data;
    const run = await requestRun(ctx, principal, {
      workspaceId: relationships.workspace.data.id,
      configurationVersionId: relationships['configuration-version']?.data?.id,
      message: attributes.message,
      isDestroy: attributes['is-destroy'],
      planOnly: attributes['plan-only'],
      autoApply: attributes['auto-apply'],
      source: runSourceOf(tfeClientOf(request)),
      options: {
        refresh: attributes.refresh ?? true,
        refresh_only: attributes['refresh-only'] ?? false,
        targets: attributes['target-addrs'] ?? [],
        replace: attributes['replace-addrs'] ?? [],
        variables: attributes.variables ?? [],
      },
    });
    return reply.status(201).send(await runDocument(ctx, request, run));
  });

  app.get<{ Params: { id: string } }>('/api/v2/runs/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return runDocument(ctx, request, await requireRun(ctx, principal, request.params.id));
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/runs', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const query = parseBody(listQuery, request.query ?? {});
    const statuses = query['filter[status]'];
    const kinds = query['filter[operation]'];
    const sources = query['filter[source]'];
    const rows = (await listRuns(ctx, workspace))
      .filter((row) => !statuses?.length || statuses.includes(row.status))
      .filter((row) => !kinds?.length || kinds.includes(operationOf(row)))
      .filter((row) => !sources?.length || sources.includes(row.source));
    const page = paginate(ctx, request, rows);
    const included = await includedOf(ctx, page.items, parseInclude(query.include, runIncludes));
    return { data: await presentRuns(ctx, page.items), ...(included.length > 0 ? { included } : {}), meta: page.meta, links: page.links };
  });

  // What the tofu CLI asks while its run is pending: where it stands.
  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/runs/queue', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const page = paginate(ctx, request, await runQueueOf(ctx, principal, request.params.org));
    return { data: await presentRuns(ctx, page.items), meta: page.meta, links: page.links };
  });

  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/capacity', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: { id: request.params.org, type: 'organization-capacity', attributes: await runCapacityOf(ctx, principal, request.params.org) } };
  });

  app.get<{ Params: { id: string } }>('/api/v2/runs/:id/run-events', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentRunEvents(await requireRun(ctx, principal, request.params.id)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/run-events/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const match = /^re-(run-.{16})-/.exec(request.params.id);
    const event = match?.[1] ? presentRunEvents(await requireRun(ctx, principal, match[1])).find((item) => item.id === request.params.id) : undefined;
    if (!event) throw new OutpostError('not_found', `run event ${request.params.id} not found`);
    return { data: event };
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
