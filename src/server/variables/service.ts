// Workspace variables. Sensitive values are write-only: stored sealed, never
// shown again through the user API, opened only for a job of the workspace.
import type { JobVariable } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { uniqueWrite } from '../db/unique-violation.ts';
import { newId } from '../ids.ts';
import type { WorkspaceRow } from '../workspaces/repo.ts';
import * as repo from './repo.ts';

export interface NewVariable {
  key: string;
  value: string;
  category: 'terraform' | 'env';
  hcl: boolean;
  sensitive: boolean;
  description: string;
}

export interface VariableChanges {
  key?: string | undefined;
  value?: string | undefined;
  hcl?: boolean | undefined;
  sensitive?: boolean | undefined;
  description?: string | undefined;
}

/** The variables of a workspace the caller may see (workspaces/service requireWorkspace). */
export async function listVariables(ctx: ServerContext, workspace: WorkspaceRow): Promise<repo.VariableRow[]> {
  return repo.listVariables(ctx.db, workspace.id);
}

export async function requireVariable(ctx: ServerContext, workspace: WorkspaceRow, id: string): Promise<repo.VariableRow> {
  const row = await repo.findVariable(ctx.db, workspace.id, id);
  if (!row) throw new OutpostError('not_found', `variable ${id} not found`);
  return row;
}

/** Keys are unique per workspace and category. */
export async function createVariable(ctx: ServerContext, workspace: WorkspaceRow, input: NewVariable): Promise<repo.VariableRow> {
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
  return row;
}

export async function updateVariable(ctx: ServerContext, current: repo.VariableRow, changes: VariableChanges): Promise<repo.VariableRow> {
  if (current.sensitive === 1 && changes.sensitive === false) {
    // Un-marking would reveal a value that was promised to stay hidden.
    throw new OutpostError('validation_failed', 'a sensitive variable cannot be made non-sensitive; delete and re-create it');
  }
  // A sensitive value is stored sealed, also when a variable becomes sensitive.
  const sensitive = changes.sensitive ?? current.sensitive === 1;
  const value =
    changes.value !== undefined ? (sensitive ? ctx.sealer.seal(changes.value) : changes.value)
    : sensitive && current.sensitive === 0 ? ctx.sealer.seal(current.value)
    : undefined;
  // Renaming onto another variable's key is a duplicate like creating it.
  await uniqueWrite(
    () =>
      repo.updateVariable(ctx.db, current.id, {
        ...(changes.key !== undefined ? { key: changes.key } : {}),
        ...(value !== undefined ? { value } : {}),
        ...(changes.hcl !== undefined ? { hcl: changes.hcl ? 1 : 0 } : {}),
        ...(changes.sensitive !== undefined ? { sensitive: changes.sensitive ? 1 : 0 } : {}),
        ...(changes.description !== undefined ? { description: changes.description } : {}),
        updated_at: ctx.now(),
      }),
    `${current.category} variable ${changes.key ?? current.key} already exists in this workspace`,
  );
  return (await repo.findVariable(ctx.db, current.workspace_id, current.id))!;
}

export async function deleteVariable(ctx: ServerContext, workspace: WorkspaceRow, id: string): Promise<void> {
  const current = await requireVariable(ctx, workspace, id);
  await repo.deleteVariable(ctx.db, current.id);
}

/** A workspace's variables as its job receives them: sensitive values opened. */
export async function variablesForJob(ctx: ServerContext, workspaceId: string): Promise<JobVariable[]> {
  return (await repo.listVariables(ctx.db, workspaceId)).map((v) => ({
    key: v.key,
    value: v.sensitive === 1 ? ctx.sealer.open(v.value) : v.value,
    category: v.category,
    hcl: v.hcl === 1,
    sensitive: v.sensitive === 1,
  }));
}
