// Workspaces (TFE: workspaces). The engine version keeps TFE's attribute
// name `terraform-version`; `engine` says which engine it is a version of.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import { engines } from '../../protocol/statuses.ts';
import type { ServerContext } from '../context.ts';
import { uniqueWrite } from '../db/unique-violation.ts';
import { authenticateApi, type ApiPrincipal } from '../http/auth.ts';
import { iso, parseBody, relation, type ResourceObject } from '../http/json-api.ts';
import { newId } from '../ids.ts';
import { requireOrganization } from '../organizations/service.ts';
import { requirePool } from '../pools/routes.ts';
import * as repo from './repo.ts';

const versionSchema = z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'expected a version such as 1.10.10');
const workingDirectory = z
  .string()
  .max(512)
  .refine((value) => !value.startsWith('/') && !value.split('/').includes('..'), 'must be a relative path inside the configuration');

const attributes = z.object({
  name: z.string().min(1).max(90).regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, - and _'),
  'auto-apply': z.boolean().optional(),
  'working-directory': workingDirectory.optional(),
  engine: z.enum(engines).optional(),
  'terraform-version': versionSchema.optional(),
  'agent-pool-id': z.string().nullable().optional(),
  'execution-mode': z.literal('agent').optional(),
});
const createWorkspace = z.object({ data: z.object({ type: z.literal('workspaces'), attributes }) });
const updateWorkspace = z.object({ data: z.object({ type: z.literal('workspaces'), attributes: attributes.partial() }) });

export async function presentWorkspace(ctx: ServerContext, row: repo.WorkspaceRow): Promise<ResourceObject> {
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
      locked: await repo.isStateLocked(ctx.db, row.id),
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

export async function requireWorkspace(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.WorkspaceRow> {
  const row = await repo.findWorkspace(ctx.db, id);
  if (!row || row.organization_id !== principal.organizationId) throw new OutpostError('not_found', `workspace ${id} not found`);
  return row;
}

async function requireOrgOf(ctx: ServerContext, principal: ApiPrincipal, org: string): Promise<string> {
  const orgId = await requireOrganization(ctx, org);
  if (orgId !== principal.organizationId) throw new OutpostError('not_found', `organization ${org} not found`);
  return orgId;
}

export function workspaceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/workspaces', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const orgId = await requireOrgOf(ctx, principal, request.params.org);
    const rows = await repo.listWorkspaces(ctx.db, orgId);
    return { data: await Promise.all(rows.map((row) => presentWorkspace(ctx, row))) };
  });

  app.get<{ Params: { org: string; name: string } }>('/api/v2/organizations/:org/workspaces/:name', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const orgId = await requireOrgOf(ctx, principal, request.params.org);
    const row = await repo.findWorkspaceByName(ctx.db, orgId, request.params.name);
    if (!row) throw new OutpostError('not_found', `workspace ${request.params.name} not found`);
    return { data: await presentWorkspace(ctx, row) };
  });

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/workspaces', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const orgId = await requireOrgOf(ctx, principal, request.params.org);
    const input = parseBody(createWorkspace, request.body).data.attributes;
    if (await repo.findWorkspaceByName(ctx.db, orgId, input.name)) {
      throw new OutpostError('already_exists', `workspace ${input.name} already exists`);
    }
    const poolId = input['agent-pool-id'] ? (await requirePool(ctx, principal, input['agent-pool-id'])).id : null;
    const now = ctx.now();
    const row = {
      id: newId('ws'),
      organization_id: orgId,
      name: input.name,
      engine: input.engine ?? 'opentofu',
      engine_version: input['terraform-version'] ?? ctx.config.defaultEngineVersion,
      working_directory: input['working-directory'] ?? '',
      pool_id: poolId,
      auto_apply: input['auto-apply'] ? 1 : 0,
      current_run_id: null,
      created_at: now,
      updated_at: now,
    } as const;
    await uniqueWrite(() => repo.insertWorkspace(ctx.db, row), `workspace ${input.name} already exists`);
    return reply.status(201).send({ data: await presentWorkspace(ctx, row) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: await presentWorkspace(ctx, await requireWorkspace(ctx, principal, request.params.id)) };
  });

  app.patch<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const current = await requireWorkspace(ctx, principal, request.params.id);
    const input = parseBody(updateWorkspace, request.body).data.attributes;
    if (input.name && input.name !== current.name && (await repo.findWorkspaceByName(ctx.db, current.organization_id, input.name))) {
      throw new OutpostError('already_exists', `workspace ${input.name} already exists`);
    }
    const poolId = input['agent-pool-id'] === undefined ? undefined : input['agent-pool-id'] === null ? null : (await requirePool(ctx, principal, input['agent-pool-id'])).id;
    if (poolId === null && current.pool_id !== null && (await repo.countUnfinishedRuns(ctx.db, current.id)) > 0) {
      throw new OutpostError('conflict', `workspace ${current.name} has unfinished runs; its agent pool cannot be removed until they end`);
    }
    // A concurrent rename to the same name passes the check above; the constraint catches it.
    await uniqueWrite(
      () =>
        repo.updateWorkspace(ctx.db, current.id, {
          ...(input.name ? { name: input.name } : {}),
          ...(input['auto-apply'] !== undefined ? { auto_apply: input['auto-apply'] ? 1 : 0 } : {}),
          ...(input['working-directory'] !== undefined ? { working_directory: input['working-directory'] } : {}),
          ...(input.engine ? { engine: input.engine } : {}),
          ...(input['terraform-version'] ? { engine_version: input['terraform-version'] } : {}),
          ...(poolId !== undefined ? { pool_id: poolId } : {}),
          updated_at: ctx.now(),
        }),
      `workspace ${input.name ?? current.name} already exists`,
    );
    return { data: await presentWorkspace(ctx, (await repo.findWorkspace(ctx.db, current.id))!) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/workspaces/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const row = await requireWorkspace(ctx, principal, request.params.id);
    if (row.current_run_id) throw new OutpostError('conflict', `workspace ${row.name} has an active run ${row.current_run_id}`);
    await repo.deleteWorkspace(ctx.db, row.id);
    return reply.status(204).send();
  });
}
