// TFE's workspace lock, for users: the `tofu` CLI (cloud block or backend
// "remote") locks the workspace through the API before it writes state, and
// unlocks it after. It is the same lock row a job's engine takes through the
// HTTP backend, held by an API token instead of a job, so the two exclude
// each other: a job cannot lock or write while a user holds it, and a user
// cannot lock, unlock or write while a job holds it.
//
// The answers follow go-tfe, which tells its errors apart by status and
// words: any 409 from `actions/lock` is ErrWorkspaceLocked; a 409 from
// `actions/unlock` is ErrWorkspaceLockedByRun or ErrWorkspaceLockedByUser
// when its detail says "is locked by Run" or "is locked by User", and
// ErrWorkspaceNotLocked otherwise; a 409 from `actions/force-unlock` is
// ErrWorkspaceNotLocked.
import { randomUUID } from 'node:crypto';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import type { WorkspaceRow } from '../workspaces/repo.ts';
import * as repo from './repo.ts';

/** Who holds a workspace's lock: a user's API token, or the job of a run (its engine, through the HTTP backend). */
export type LockHolder = { kind: 'user'; tokenId: string } | { kind: 'job'; jobId: string | null; runId: string | null };

function holderOf(row: repo.StateLockRow & { run_id: string | null }): LockHolder {
  return row.token_id !== null ? { kind: 'user', tokenId: row.token_id } : { kind: 'job', jobId: row.job_id, runId: row.run_id };
}

/** Who holds the lock of a workspace, if anyone (for the workspace's `locked-by`). */
export async function lockHolderOf(ctx: ServerContext, workspaceId: string): Promise<LockHolder | undefined> {
  const row = await repo.findLockWithRun(ctx.db, workspaceId);
  return row ? holderOf(row) : undefined;
}

/** The holder in go-tfe's words ("Run …", "User …"), which it matches to name its error. */
function describe(holder: LockHolder): string {
  if (holder.kind === 'user') return `User (API token ${holder.tokenId})`;
  return holder.runId !== null ? `Run ${holder.runId}` : `Run (job ${holder.jobId ?? 'unknown'})`;
}

/** The LockInfo another job's engine is shown (without its ID, see service holderView): who, why and since when. */
function lockInfoOf(ctx: ServerContext, principal: ApiPrincipal, reason: string | undefined): { ID: string; Who: string; Info: string; Created: string } {
  return { ID: randomUUID(), Who: `API token ${principal.tokenId}`, Info: reason ?? '', Created: new Date(ctx.now()).toISOString() };
}

/** Locks a workspace the caller may see (workspaces/service requireWorkspace) for its API token; a locked workspace is 409 conflict. */
export async function lockWorkspace(ctx: ServerContext, principal: ApiPrincipal, workspace: WorkspaceRow, reason: string | undefined): Promise<void> {
  const info = lockInfoOf(ctx, principal, reason);
  // The holder may unlock between our failed insert and our read: try again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const row = { workspace_id: workspace.id, lock_id: info.ID, info: JSON.stringify(info), job_id: null, created_at: ctx.now(), token_id: principal.tokenId };
    if (await repo.insertLock(ctx.db, row)) return;
    const holder = await lockHolderOf(ctx, workspace.id);
    // TFE refuses a second lock by the same user too: the CLI's lock is not reentrant.
    if (holder) throw new OutpostError('conflict', `workspace ${workspace.name} is already locked by ${describe(holder)}`);
  }
  throw new OutpostError('conflict', `the lock of workspace ${workspace.name} is changing hands too quickly; try again`);
}

/** Releases the lock the caller's API token holds; a lock held by another token or a run, or none, is 409 conflict. */
export async function unlockWorkspace(ctx: ServerContext, principal: ApiPrincipal, workspace: WorkspaceRow): Promise<void> {
  if (await repo.deleteTokenLock(ctx.db, workspace.id, principal.tokenId)) return;
  const holder = await lockHolderOf(ctx, workspace.id);
  if (!holder) throw new OutpostError('conflict', `workspace ${workspace.name} is not locked`);
  throw new OutpostError('conflict', `workspace ${workspace.name} is locked by ${describe(holder)}; only its holder may unlock it (force-unlock removes any lock)`);
}

/**
 * Removes whatever lock the workspace has (`tofu force-unlock`), a run's
 * included: its engine finds the lock gone, and the run's state writes are
 * no longer fenced by it. A workspace without a lock is 409 conflict.
 */
export async function forceUnlockWorkspace(ctx: ServerContext, workspace: WorkspaceRow): Promise<void> {
  if (!(await repo.deleteAnyLock(ctx.db, workspace.id))) throw new OutpostError('conflict', `workspace ${workspace.name} is not locked`);
}

/** Before a user writes state: the caller's API token must hold the lock (TFE answers 409 otherwise). */
export async function requireLockedByCaller(ctx: ServerContext, principal: ApiPrincipal, workspace: WorkspaceRow): Promise<void> {
  const holder = await lockHolderOf(ctx, workspace.id);
  if (holder?.kind === 'user' && holder.tokenId === principal.tokenId) return;
  if (!holder) throw new OutpostError('conflict', `workspace ${workspace.name} is not locked; lock it (POST /api/v2/workspaces/${workspace.id}/actions/lock) before creating a state version`);
  throw new OutpostError('conflict', `workspace ${workspace.name} is locked by ${describe(holder)}, not by this API token; a state version is created under the creator's own lock`);
}
