// Workspaces (TFE: workspaces). The engine version keeps TFE's attribute
// name `terraform-version`; `engine` says which engine it is a version of.
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { requestOf, workspaceInput, workspaceUpdate } from '../../protocol/api-inputs.ts';
import type { Workspace } from '../../protocol/api-resources.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import { requireOrganization } from '../organizations/service.ts';
import { repositoryOf, setWorkspaceRepository, type RepositorySettings, type RepositoryView } from '../vcs/service.ts';
import {
  createWorkspace,
  deleteWorkspace,
  getWorkspace,
  getWorkspaceByName,
  listWorkspaces,
  requireWorkspace,
  updateWorkspace,
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
  };
}

function presentRepository(view: RepositoryView | undefined): Partial<Workspace['attributes']> {
  if (!view) return { 'vcs-repo': null, 'trigger-patterns': [], 'speculative-enabled': true, 'vcs-status': null };
  const { link, provider } = view;
  return {
    'vcs-repo': {
      identifier: link.repository,
      branch: link.branch,
      'vcs-provider-id': provider.id,
      'oauth-token-id': provider.id,
      'ingress-submodules': link.submodules === 1,
      'tags-regex': link.tags_regex,
      'repository-http-url': provider.kind === 'git' ? null : `${provider.http_url ?? ''}/${link.repository}`,
    },
    'trigger-patterns': JSON.parse(link.trigger_patterns) as string[],
    'speculative-enabled': link.speculative === 1,
    'vcs-status': view.status,
  };
}

async function present(ctx: ServerContext, row: WorkspaceView): Promise<Workspace> {
  const workspace = presentWorkspace(row);
  return { ...workspace, attributes: { ...workspace.attributes, ...presentRepository(await repositoryOf(ctx, row.id)) } };
}

function presentWorkspace(row: WorkspaceView): Workspace {
  return {
    id: row.id,
    type: 'workspaces',
    attributes: {
      name: row.name,
      'auto-apply': row.auto_apply === 1,
      'working-directory': row.working_directory,
      engine: row.engine,
      'terraform-version': row.engine_version,
      'execution-mode': 'agent',
      locked: row.locked,
      'created-at': iso(row.created_at),
      'updated-at': iso(row.updated_at),
    },
    relationships: {
      organization: relation('organizations', row.organization_id),
      'agent-pool': relation('agent-pools', row.pool_id),
      'current-run': relation('runs', row.current_run_id),
    },
  };
}

export function workspaceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/workspaces', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: await Promise.all((await listWorkspaces(ctx, principal, request.params.org)).map((row) => present(ctx, row))) };
  });

  app.get<{ Params: { org: string; name: string } }>('/api/v2/organizations/:org/workspaces/:name', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: await present(ctx, await getWorkspaceByName(ctx, principal, request.params.org, request.params.name)) };
  });

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/workspaces', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const org = await requireOrganization(ctx, principal, request.params.org);
    const input = parseBody(createWorkspaceBody, request.body).data.attributes;
    const created = await createWorkspace(ctx, principal, org, { ...settingsOf(input), name: input.name });
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
    return { data: await present(ctx, await getWorkspace(ctx, principal, request.params.id)) };
  });

  app.patch<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const current = await requireWorkspace(ctx, principal, request.params.id);
    const input = parseBody(updateWorkspaceBody, request.body).data.attributes;
    // The link first: a refused repository leaves the other settings unchanged too.
    await setWorkspaceRepository(ctx, principal, current, repositorySettingsOf(input));
    return { data: await present(ctx, await updateWorkspace(ctx, principal, current, settingsOf(input))) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await deleteWorkspace(ctx, principal, request.params.id);
    return reply.status(204).send();
  });
}
