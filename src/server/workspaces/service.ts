// Workspaces: who may see and change them, unique names per organization,
// the defaults of a new workspace, and the rules that keep runs safe: a
// workspace with unfinished runs keeps its agent pool, and one with an
// active run is not deleted.
import { OutpostError } from '../../protocol/errors.ts';
import type { Engine, ExecutionMode } from '../../protocol/statuses.ts';
import type { ServerContext } from '../context.ts';
import { uniqueWrite } from '../db/unique-violation.ts';
import { newId } from '../ids.ts';
import type { OrganizationRow } from '../organizations/repo.ts';
import { requireOrganization, type ApiPrincipal } from '../organizations/service.ts';
import { requirePool } from '../pools/service.ts';
import * as repo from './repo.ts';

/** A workspace as users see it: with whether its state is locked, and its tags. */
export type WorkspaceView = repo.WorkspaceRow & { locked: boolean; tags: string[] };

/** What a user sets on a workspace; unset fields keep their value (or the default, for a new workspace). */
export interface WorkspaceSettings {
  name?: string | undefined;
  autoApply?: boolean | undefined;
  workingDirectory?: string | undefined;
  engine?: Engine | undefined;
  engineVersion?: string | undefined;
  /** An agent pool id, or null for none. */
  poolId?: string | null | undefined;
  executionMode?: ExecutionMode | undefined;
  description?: string | undefined;
  /** Replaces the workspace's tags. */
  tags?: readonly string[] | undefined;
}

/** A workspace the caller may see: one of its organization. */
export async function requireWorkspace(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.WorkspaceRow> {
  const row = await repo.findWorkspace(ctx.db, id);
  if (!row || row.organization_id !== principal.organizationId) throw new OutpostError('not_found', `workspace ${id} not found`);
  return row;
}

/** A workspace by id for work the system does on its own behalf (a verified VCS webhook, a poll): callers have checked who asked. */
export async function findWorkspaceById(ctx: ServerContext, id: string): Promise<repo.WorkspaceRow | undefined> {
  return repo.findWorkspace(ctx.db, id);
}

export async function viewOf(ctx: ServerContext, row: repo.WorkspaceRow): Promise<WorkspaceView> {
  return { ...row, locked: await repo.isStateLocked(ctx.db, row.id), tags: await repo.tagsOf(ctx.db, row.id) };
}

export async function getWorkspace(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<WorkspaceView> {
  return viewOf(ctx, await requireWorkspace(ctx, principal, id));
}

/** The workspaces of an organization the caller may act in, filtered; rows, so a page of them is viewed (viewOf), not all. */
export async function listWorkspaces(ctx: ServerContext, principal: ApiPrincipal, org: string, filter: repo.WorkspaceFilter = {}): Promise<repo.WorkspaceRow[]> {
  const { id } = await requireOrganization(ctx, principal, org);
  return repo.listWorkspaces(ctx.db, id, filter);
}

/** Adds tags to, or removes them from, a workspace the caller may see (requireWorkspace). */
export async function changeTags(ctx: ServerContext, workspace: repo.WorkspaceRow, change: { add?: readonly string[]; remove?: readonly string[] }): Promise<void> {
  await repo.addTags(ctx.db, workspace.id, change.add ?? []);
  await repo.removeTags(ctx.db, workspace.id, change.remove ?? []);
}

export async function getWorkspaceByName(ctx: ServerContext, principal: ApiPrincipal, org: string, name: string): Promise<WorkspaceView> {
  const { id } = await requireOrganization(ctx, principal, org);
  const row = await repo.findWorkspaceByName(ctx.db, id, name);
  if (!row) throw new OutpostError('not_found', `workspace ${name} not found`);
  return viewOf(ctx, row);
}

/** The pool a workspace is to use, checked to be the caller's: undefined keeps the current one, null means none. */
async function resolvePool(ctx: ServerContext, principal: ApiPrincipal, poolId: string | null | undefined): Promise<string | null | undefined> {
  if (poolId === undefined || poolId === null) return poolId;
  return (await requirePool(ctx, principal, poolId)).id;
}

/**
 * Asking for agent execution names the pool it runs on, as in TFE (go-tfe
 * refuses it client-side too). A workspace made without saying gets agent
 * mode and may get its pool later.
 */
function requirePoolForAgentMode(mode: ExecutionMode | undefined, poolId: string | null | undefined): void {
  if (mode === 'agent' && !poolId) throw new OutpostError('validation_failed', 'execution-mode agent needs an agent pool: give agent-pool-id too');
}

/** Creates a workspace in an organization the caller may act in (requireOrganization). */
export async function createWorkspace(ctx: ServerContext, principal: ApiPrincipal, org: OrganizationRow, settings: WorkspaceSettings & { name: string }): Promise<WorkspaceView> {
  if (await repo.findWorkspaceByName(ctx.db, org.id, settings.name)) {
    throw new OutpostError('already_exists', `workspace ${settings.name} already exists`);
  }
  // An empty pool id is no pool, as it always was.
  const poolId = settings.poolId ? await resolvePool(ctx, principal, settings.poolId) : null;
  requirePoolForAgentMode(settings.executionMode, poolId);
  const now = ctx.now();
  const row = {
    id: newId('ws'),
    organization_id: org.id,
    name: settings.name,
    engine: settings.engine ?? 'opentofu',
    engine_version: settings.engineVersion ?? ctx.config.defaultEngineVersion,
    working_directory: settings.workingDirectory ?? '',
    pool_id: poolId ?? null,
    auto_apply: settings.autoApply ? 1 : 0,
    current_run_id: null,
    created_at: now,
    updated_at: now,
    execution_mode: settings.executionMode ?? 'agent',
    description: settings.description ?? '',
  } as const;
  await uniqueWrite(() => repo.insertWorkspace(ctx.db, row), `workspace ${settings.name} already exists`);
  await repo.addTags(ctx.db, row.id, settings.tags ?? []);
  return viewOf(ctx, row);
}

/** Changes a workspace the caller may see (requireWorkspace). */
export async function updateWorkspace(ctx: ServerContext, principal: ApiPrincipal, current: repo.WorkspaceRow, settings: WorkspaceSettings): Promise<WorkspaceView> {
  if (settings.name && settings.name !== current.name && (await repo.findWorkspaceByName(ctx.db, current.organization_id, settings.name))) {
    throw new OutpostError('already_exists', `workspace ${settings.name} already exists`);
  }
  const poolId = await resolvePool(ctx, principal, settings.poolId);
  requirePoolForAgentMode(settings.executionMode, poolId === undefined ? current.pool_id : poolId);
  // Its unfinished runs need the pool: their jobs are queued in it, and a pending run could not be queued without one.
  if (poolId === null && current.pool_id !== null && (await repo.countUnfinishedRuns(ctx.db, current.id)) > 0) {
    throw new OutpostError('conflict', `workspace ${current.name} has unfinished runs; its agent pool cannot be removed until they end`);
  }
  // A concurrent rename to the same name passes the check above; the constraint catches it.
  await uniqueWrite(
    () =>
      repo.updateWorkspace(ctx.db, current.id, {
        ...(settings.name ? { name: settings.name } : {}),
        ...(settings.autoApply !== undefined ? { auto_apply: settings.autoApply ? 1 : 0 } : {}),
        ...(settings.workingDirectory !== undefined ? { working_directory: settings.workingDirectory } : {}),
        ...(settings.engine ? { engine: settings.engine } : {}),
        ...(settings.engineVersion ? { engine_version: settings.engineVersion } : {}),
        ...(poolId !== undefined ? { pool_id: poolId } : {}),
        ...(settings.executionMode ? { execution_mode: settings.executionMode } : {}),
        ...(settings.description !== undefined ? { description: settings.description } : {}),
        updated_at: ctx.now(),
      }),
    `workspace ${settings.name ?? current.name} already exists`,
  );
  if (settings.tags) {
    const old = await repo.tagsOf(ctx.db, current.id);
    await changeTags(ctx, current, { add: settings.tags, remove: old.filter((tag) => !settings.tags!.includes(tag)) });
  }
  return viewOf(ctx, (await repo.findWorkspace(ctx.db, current.id))!);
}

export async function deleteWorkspace(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<void> {
  const row = await requireWorkspace(ctx, principal, id);
  if (row.current_run_id) throw new OutpostError('conflict', `workspace ${row.name} has an active run ${row.current_run_id}`);
  await repo.deleteWorkspace(ctx.db, row.id);
}
