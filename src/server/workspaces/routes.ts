// Workspaces (TFE: workspaces). The engine version keeps TFE's attribute
// name `terraform-version`; `engine` says which engine it is a version of.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requestOf, workspaceInput, workspaceTag, workspaceUpdate } from '../../protocol/api-inputs.ts';
import { paginate } from '../http/pagination.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import type { WorkspaceRow } from './repo.ts';
import { includeQuery, parseInclude } from '../runs/included.ts';
import { presentRuns } from '../runs/presenter.ts';
import { findRunById } from '../runs/service.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { requireOrganization } from '../organizations/service.ts';
import { setWorkspaceRepository, type RepositorySettings } from '../vcs/service.ts';
import { present } from './presenter.ts';
import {
  createWorkspace,
  deleteWorkspace,
  getWorkspace,
  getWorkspaceByName,
  listWorkspaces,
  requireWorkspace,
  updateWorkspace,
  changeTags,
  viewOf,
  type WorkspaceSettings,
  type WorkspaceView,
} from './service.ts';

const createWorkspaceBody = requestOf('workspaces', workspaceInput);
const updateWorkspaceBody = requestOf('workspaces', workspaceUpdate);

function repositorySettingsOf(input: z.infer<typeof workspaceUpdate>): RepositorySettings {
  return { vcsRepo: input['vcs-repo'], triggerPatterns: input['trigger-patterns'], speculative: input['speculative-enabled'] };
}

function settingsOf(input: z.infer<typeof workspaceUpdate>): WorkspaceSettings {
  return {
    name: input.name,
    autoApply: input['auto-apply'],
    workingDirectory: input['working-directory'],
    engine: input.engine,
    engineVersion: input['terraform-version'],
    poolId: input['agent-pool-id'],
    executionMode: input['execution-mode'],
    description: input.description ?? undefined,
    tags: input['tag-names'],
  };
}

// go-tfe sends tags as a relationship of objects with a name (and no id),
// TFE's own attribute is `tag-names`: both are taken.
const tagList = z.array(z.object({ type: z.literal('tags'), attributes: z.object({ name: workspaceTag }) })).max(100);
const tagRelationships = z.looseObject({ relationships: z.looseObject({ tags: z.object({ data: tagList }).optional() }).optional() });
const tagsBody = z.object({ data: tagList });

function tagsOfBody(body: unknown, fromAttributes: readonly string[] | undefined): string[] | undefined {
  const related = parseBody(z.object({ data: tagRelationships }), body).data.relationships?.tags?.data.map((tag) => tag.attributes.name);
  if (related === undefined && fromAttributes === undefined) return undefined;
  return [...new Set([...(fromAttributes ?? []), ...(related ?? [])])];
}

/** What `include=` may name on a workspace: its current run is embedded; the others have nothing to embed here. */
const workspaceIncludes = ['current_run', 'current_run.plan', 'current_run.configuration_version', 'organization', 'locked_by', 'readme', 'outputs', 'project'];

const listQuery = z.looseObject({
  'search[name]': z.string().max(255).optional(),
  'search[tags]': z.string().max(4096).optional(),
  'search[exclude-tags]': z.string().max(4096).optional(),
});
const splitTags = (value: string | undefined) => (value === undefined ? undefined : [...new Set(value.split(',').map((tag) => tag.trim()).filter((tag) => tag !== ''))]);

export function workspaceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/workspaces', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const query = parseBody(listQuery, request.query ?? {});
    const rows = await listWorkspaces(ctx, principal, request.params.org, {
      nameContains: query['search[name]'],
      tags: splitTags(query['search[tags]']),
      excludeTags: splitTags(query['search[exclude-tags]']),
    });
    const page = paginate(ctx, request, rows);
    return { data: await Promise.all(page.items.map(async (row) => present(ctx, await viewOf(ctx, row)))), meta: page.meta, links: page.links };
  });

  app.get<{ Params: { org: string; name: string } }>('/api/v2/organizations/:org/workspaces/:name', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return document(request, await getWorkspaceByName(ctx, principal, request.params.org, request.params.name));
  });

  /** A workspace, with its current run when `include=current_run` asks for it. */
  async function document(request: FastifyRequest, view: WorkspaceView): Promise<{ data: unknown; included?: unknown[] }> {
    const include = parseInclude(parseBody(includeQuery, request.query ?? {}).include, workspaceIncludes);
    const data = await present(ctx, view);
    if (!include.includes('current_run') || !view.current_run_id) return { data };
    const run = await findRunById(ctx, view.current_run_id);
    return run ? { data, included: await presentRuns(ctx, [run]) } : { data };
  }

  app.patch<{ Params: { org: string; name: string } }>('/api/v2/organizations/:org/workspaces/:name', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const current = await getWorkspaceByName(ctx, principal, request.params.org, request.params.name);
    return { data: await present(ctx, await update(principal, current, request.body)) };
  });

  app.delete<{ Params: { org: string; name: string } }>('/api/v2/organizations/:org/workspaces/:name', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await getWorkspaceByName(ctx, principal, request.params.org, request.params.name);
    await deleteWorkspace(ctx, principal, workspace.id);
    return reply.status(204).send();
  });

  async function update(principal: ApiPrincipal, current: WorkspaceRow, body: unknown) {
    const input = parseBody(updateWorkspaceBody, body).data.attributes;
    // The link first: a refused repository leaves the other settings unchanged too.
    await setWorkspaceRepository(ctx, principal, current, repositorySettingsOf(input));
    return updateWorkspace(ctx, principal, current, { ...settingsOf(input), tags: tagsOfBody(body, input['tag-names']) });
  }

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/relationships/tags', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await getWorkspace(ctx, principal, request.params.id);
    const page = paginate(ctx, request, workspace.tags);
    return { data: page.items.map((name) => ({ id: name, type: 'tags', attributes: { name } })), meta: page.meta, links: page.links };
  });

  for (const [method, change] of [['post', 'add'], ['delete', 'remove']] as const) {
    app[method]<{ Params: { id: string } }>('/api/v2/workspaces/:id/relationships/tags', async (request, reply) => {
      const principal = await authenticateApi(ctx, request);
      const workspace = await requireWorkspace(ctx, principal, request.params.id);
      const names = parseBody(tagsBody, request.body).data.map((tag) => tag.attributes.name);
      await changeTags(ctx, workspace, { [change]: names });
      return reply.status(204).send();
    });
  }

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/workspaces', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const org = await requireOrganization(ctx, principal, request.params.org);
    const input = parseBody(createWorkspaceBody, request.body).data.attributes;
    const created = await createWorkspace(ctx, principal, org, { ...settingsOf(input), name: input.name, tags: tagsOfBody(request.body, input['tag-names']) });
    try {
      await setWorkspaceRepository(ctx, principal, created, repositorySettingsOf(input));
    } catch (error) {
      // A workspace whose link was refused is not left half made.
      await deleteWorkspace(ctx, principal, created.id);
      throw error;
    }
    return reply.status(201).send({ data: await present(ctx, created) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return document(request, await getWorkspace(ctx, principal, request.params.id));
  });

  app.patch<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const current = await requireWorkspace(ctx, principal, request.params.id);
    return { data: await present(ctx, await update(principal, current, request.body)) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await deleteWorkspace(ctx, principal, request.params.id);
    return reply.status(204).send();
  });
}
