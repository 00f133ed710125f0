// Workspace variables (TFE: vars). Sensitive values are write-only: no API
// response ever carries them; only a job token of that workspace reads them.
import type { FastifyInstance } from 'fastify';
import { requestOf, variableInput, variableUpdate } from '../../protocol/api-inputs.ts';
import type { Variable } from '../../protocol/api-resources.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody, relation } from '../http/json-api.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import type { VariableRow } from './repo.ts';
import { createVariable, deleteVariable, listVariables, requireVariable, updateVariable } from './service.ts';

const createVariableBody = requestOf('vars', variableInput);
const updateVariableBody = requestOf('vars', variableUpdate);

function present(row: VariableRow): Variable {
  return {
    id: row.id,
    type: 'vars',
    attributes: {
      key: row.key,
      value: row.sensitive === 1 ? null : row.value,
      category: row.category,
      hcl: row.hcl === 1,
      sensitive: row.sensitive === 1,
      description: row.description,
    },
    relationships: { configurable: relation('workspaces', row.workspace_id) },
  };
}

export function variableRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/vars', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    return { data: (await listVariables(ctx, workspace)).map(present) };
  });

  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/vars', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const input = parseBody(createVariableBody, request.body).data.attributes;
    return reply.status(201).send({ data: present(await createVariable(ctx, workspace, input)) });
  });

  app.patch<{ Params: { id: string; varId: string } }>('/api/v2/workspaces/:id/vars/:varId', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const current = await requireVariable(ctx, workspace, request.params.varId);
    const input = parseBody(updateVariableBody, request.body).data.attributes;
    return { data: present(await updateVariable(ctx, current, input)) };
  });

  app.delete<{ Params: { id: string; varId: string } }>('/api/v2/workspaces/:id/vars/:varId', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    await deleteVariable(ctx, workspace, request.params.varId);
    return reply.status(204).send();
  });
}
