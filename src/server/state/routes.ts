// State versions as users see them (TFE: state-versions, current-state-version).
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../protocol/errors.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi, type ApiPrincipal } from '../http/auth.ts';
import { iso, relation, type ResourceObject } from '../http/json-api.ts';
import { findWorkspace } from '../workspaces/repo.ts';
import { requireWorkspace } from '../workspaces/routes.ts';
import * as repo from './repo.ts';
import { parseOutputs } from './service.ts';

function present(ctx: ServerContext, row: repo.StateVersionRow): ResourceObject {
  return {
    id: row.id,
    type: 'state-versions',
    attributes: {
      serial: row.serial,
      lineage: row.lineage,
      size: row.size,
      sha256: row.sha256,
      'created-at': iso(row.created_at),
      'hosted-state-download-url': `${ctx.publicUrl}/api/v2/state-versions/${row.id}/download`,
    },
    relationships: { workspace: relation('workspaces', row.workspace_id), run: relation('runs', row.run_id) },
  };
}

async function requireStateVersion(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.StateVersionRow> {
  const row = await repo.findStateVersion(ctx.db, id);
  const workspace = row ? await findWorkspace(ctx.db, row.workspace_id) : undefined;
  if (!row || workspace?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `state version ${id} not found`);
  return row;
}

export function stateRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/state-versions', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    return { data: (await repo.listStateVersions(ctx.db, workspace.id, 100)).map((row) => present(ctx, row)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/current-state-version', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const row = await repo.currentStateVersion(ctx.db, workspace.id);
    if (!row) throw new OutpostError('not_found', `workspace ${workspace.name} has no state yet`);
    return { data: present(ctx, row) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(ctx, await requireStateVersion(ctx, principal, request.params.id)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id/download', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const row = await requireStateVersion(ctx, principal, request.params.id);
    const blob = await ctx.blobs.stream(blobKeys.state(row.workspace_id, row.id));
    if (!blob) throw new OutpostError('not_found', `state version ${row.id} has no stored file`);
    return reply.header('content-type', 'application/json').header('content-length', blob.size).send(blob.stream);
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id/outputs', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const row = await requireStateVersion(ctx, principal, request.params.id);
    return {
      data: parseOutputs(row).map((output) => ({
        id: `${row.id}-${output.name}`,
        type: 'state-version-outputs',
        attributes: { name: output.name, sensitive: output.sensitive, type: output.type, value: output.sensitive ? null : output.value },
      })),
    };
  });
}
