// State versions as users see them (TFE: state-versions, current-state-version).
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import type { StateOutput, StateVersion } from '../../protocol/api-resources.ts';
import { iso, relation } from '../http/json-api.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import type { StateVersionRow } from './repo.ts';
import { listStateVersions, parseOutputs, requireCurrentStateVersion, requireStateVersion, stateFileOf } from './service.ts';

function present(ctx: ServerContext, row: StateVersionRow): StateVersion {
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

export function stateRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/state-versions', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    return { data: (await listStateVersions(ctx, workspace)).map((row) => present(ctx, row)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/current-state-version', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    return { data: present(ctx, await requireCurrentStateVersion(ctx, workspace)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(ctx, await requireStateVersion(ctx, principal, request.params.id)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id/download', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const blob = await stateFileOf(ctx, principal, request.params.id);
    return reply.header('content-type', 'application/json').header('content-length', blob.size).send(blob.stream);
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id/outputs', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const row = await requireStateVersion(ctx, principal, request.params.id);
    return {
      data: parseOutputs(row).map((output): StateOutput => ({
        id: `${row.id}-${output.name}`,
        type: 'state-version-outputs',
        attributes: { name: output.name, sensitive: output.sensitive, type: output.type, value: output.sensitive ? null : output.value },
      })),
    };
  });
}
