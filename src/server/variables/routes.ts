// Workspace variables (TFE: vars). Sensitive values are write-only: no API
// response ever carries them; only a job token of that workspace reads them.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { uniqueWrite } from '../db/unique-violation.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody, relation, type ResourceObject } from '../http/json-api.ts';
import { newId } from '../ids.ts';
import { requireWorkspace } from '../workspaces/routes.ts';
import * as repo from './repo.ts';

const keySchema = z.string().min(1).max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid identifier');
const attributes = z.object({
  key: keySchema,
  value: z.string().max(256 * 1024).default(''),
  category: z.enum(['terraform', 'env']),
  hcl: z.boolean().default(false),
  sensitive: z.boolean().default(false),
  description: z.string().max(512).default(''),
});
const createVariable = z.object({ data: z.object({ type: z.literal('vars'), attributes }) });
const updateVariable = z.object({
  data: z.object({
    type: z.literal('vars'),
    attributes: z.object({
      key: keySchema.optional(),
      value: z.string().max(256 * 1024).optional(),
      hcl: z.boolean().optional(),
      sensitive: z.boolean().optional(),
      description: z.string().max(512).optional(),
    }),
  }),
});

function present(row: repo.VariableRow): ResourceObject {
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
    return { data: (await repo.listVariables(ctx.db, workspace.id)).map(present) };
  });

  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/vars', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const input = parseBody(createVariable, request.body).data.attributes;
    if (await repo.findVariableByKey(ctx.db, workspace.id, input.category, input.key)) {
      throw new OutpostError('already_exists', `${input.category} variable ${input.key} already exists in this workspace`);
    }
    const now = ctx.now();
    const row = {
      id: newId('var'),
      workspace_id: workspace.id,
      key: input.key,
      value: input.sensitive ? ctx.sealer.seal(input.value) : input.value,
      category: input.category,
      hcl: input.hcl ? 1 : 0,
      sensitive: input.sensitive ? 1 : 0,
      description: input.description,
      created_at: now,
      updated_at: now,
    } as const;
    await uniqueWrite(() => repo.insertVariable(ctx.db, row), `${input.category} variable ${input.key} already exists in this workspace`);
    return reply.status(201).send({ data: present(row) });
  });

  app.patch<{ Params: { id: string; varId: string } }>('/api/v2/workspaces/:id/vars/:varId', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const current = await repo.findVariable(ctx.db, workspace.id, request.params.varId);
    if (!current) throw new OutpostError('not_found', `variable ${request.params.varId} not found`);
    const input = parseBody(updateVariable, request.body).data.attributes;
    if (current.sensitive === 1 && input.sensitive === false) {
      // Un-marking would reveal a value that was promised to stay hidden.
      throw new OutpostError('validation_failed', 'a sensitive variable cannot be made non-sensitive; delete and re-create it');
    }
    // A sensitive value is stored sealed, also when a variable becomes sensitive.
    const sensitive = input.sensitive ?? current.sensitive === 1;
    const value =
      input.value !== undefined ? (sensitive ? ctx.sealer.seal(input.value) : input.value)
      : sensitive && current.sensitive === 0 ? ctx.sealer.seal(current.value)
      : undefined;
    // Renaming onto another variable's key is a duplicate like creating it.
    await uniqueWrite(
      () =>
        repo.updateVariable(ctx.db, current.id, {
          ...(input.key !== undefined ? { key: input.key } : {}),
          ...(value !== undefined ? { value } : {}),
          ...(input.hcl !== undefined ? { hcl: input.hcl ? 1 : 0 } : {}),
          ...(input.sensitive !== undefined ? { sensitive: input.sensitive ? 1 : 0 } : {}),
          ...(input.description !== undefined ? { description: input.description } : {}),
          updated_at: ctx.now(),
        }),
      `${current.category} variable ${input.key ?? current.key} already exists in this workspace`,
    );
    return { data: present((await repo.findVariable(ctx.db, workspace.id, current.id))!) };
  });

  app.delete<{ Params: { id: string; varId: string } }>('/api/v2/workspaces/:id/vars/:varId', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const current = await repo.findVariable(ctx.db, workspace.id, request.params.varId);
    if (!current) throw new OutpostError('not_found', `variable ${request.params.varId} not found`);
    await repo.deleteVariable(ctx.db, current.id);
    return reply.status(204).send();
  });
}
