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

function present(row: WorkspaceView): Workspace {
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
    return { data: (await listWorkspaces(ctx, principal, request.params.org)).map(present) };
  });

  app.get<{ Params: { org: string; name: string } }>('/api/v2/organizations/:org/workspaces/:name', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(await getWorkspaceByName(ctx, principal, request.params.org, request.params.name)) };
  });

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/workspaces', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const org = await requireOrganization(ctx, principal, request.params.org);
    const input = parseBody(createWorkspaceBody, request.body).data.attributes;
    return reply.status(201).send({ data: present(await createWorkspace(ctx, principal, org, { ...settingsOf(input), name: input.name })) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(await getWorkspace(ctx, principal, request.params.id)) };
  });

  app.patch<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const current = await requireWorkspace(ctx, principal, request.params.id);
    const input = parseBody(updateWorkspaceBody, request.body).data.attributes;
    return { data: present(await updateWorkspace(ctx, principal, current, settingsOf(input))) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await deleteWorkspace(ctx, principal, request.params.id);
    return reply.status(204).send();
  });
}
