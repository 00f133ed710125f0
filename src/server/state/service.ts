// The HTTP state backend's semantics: a lock per workspace, and a new state
// version for every save. Saves are refused when someone else holds the lock
// or when they would move the serial backwards within one lineage. Only an
// apply job writes state; a plan-only run's job may not even lock it. Users
// read state versions of their own workspaces, and write them through the
// API (a CLI running the engine itself) while their token holds the lock
// (workspace-lock.ts).
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { OutpostError } from '../../protocol/errors.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import { newId } from '../ids.ts';
import type { JobScope } from '../jobs/service.ts';
import type { PageRequest } from '../http/pagination.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { findWorkspace, type WorkspaceRow } from '../workspaces/repo.ts';
import * as repo from './repo.ts';

// The users' workspace lock has its own module; other domains reach it here.
export { forceUnlockWorkspace, lockHolderOf, lockWorkspace, unlockWorkspace, type LockHolder } from './workspace-lock.ts';

export interface StateOutput {
  name: string;
  value: unknown;
  sensitive: boolean;
  type: unknown;
}

export interface StateDocument {
  serial: number;
  lineage: string;
  outputs?: Record<string, { value?: unknown; type?: unknown; sensitive?: boolean }>;
}

// A copy is parsed only to check serial and lineage and to list outputs; the
// stored file is the body as sent (routes bound its size by OUTPOST_MAX_STATE_MB).
export function parseState(body: Buffer): StateDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new OutpostError('invalid_request', 'the state is not valid JSON');
  }
  const doc = parsed as Partial<StateDocument>;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || typeof doc.serial !== 'number' || typeof doc.lineage !== 'string') {
    throw new OutpostError('validation_failed', 'the state must be a JSON object with a numeric serial and a lineage');
  }
  return doc as StateDocument;
}

/** Who writes a state: a job's engine (HTTP backend) or a user's API token (the API). */
export interface StateWriter {
  runId: string | null;
  /** The job whose engine writes; null for a user. */
  jobId: string | null;
  /** The lock id a job's engine sends along (`?ID=`). */
  lockId: string | undefined;
  /** The API token of a user: it must hold the workspace's lock. */
  tokenId?: string | undefined;
  /** Skips the serial check, as `tofu state push -force` asks. */
  force?: boolean | undefined;
}

export async function saveState(ctx: ServerContext, workspaceId: string, writer: StateWriter, body: Buffer): Promise<repo.StateVersionRow> {
  return storeState(ctx, workspaceId, writer, body, parseState(body));
}

/** saveState for a body already parsed (parseState). */
export async function storeState(ctx: ServerContext, workspaceId: string, writer: StateWriter, body: Buffer, doc: StateDocument): Promise<repo.StateVersionRow> {
  const lock = await repo.findLock(ctx.db, workspaceId);
  if (writer.tokenId !== undefined) {
    // A user writes only under the lock their token took (TFE's rule); the
    // API routes describe the holder before this, which is the last word.
    if (!lock || lock.token_id !== writer.tokenId || lock.job_id !== null) {
      throw new OutpostError('conflict', 'the workspace is not locked by this API token; lock it before creating a state version');
    }
  } else if (lock && (lock.lock_id !== writer.lockId || lock.job_id !== writer.jobId || lock.token_id !== null)) {
    // The lock id alone is not proof: another job of the workspace may have seen it.
    throw new OutpostError('state_locked', 'the state is locked and this write does not hold the lock');
  }
  const current = await repo.currentStateVersion(ctx.db, workspaceId);
  if (!writer.force && current && current.lineage === doc.lineage && doc.serial < current.serial) {
    throw new OutpostError('state_serial_conflict', `serial ${doc.serial} is older than the stored serial ${current.serial}`);
  }
  // Sensitive output values stay only in the state file itself: the
  // database's copy (for listing outputs) never holds them.
  const outputs: StateOutput[] = Object.entries(doc.outputs ?? {}).map(([name, output]) => ({
    name,
    value: output.sensitive === true ? null : (output.value ?? null),
    sensitive: output.sensitive === true,
    type: output.type ?? null,
  }));
  const row = {
    id: newId('sv'),
    workspace_id: workspaceId,
    run_id: writer.runId,
    serial: doc.serial,
    lineage: doc.lineage,
    size: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
    outputs: JSON.stringify(outputs),
    created_at: ctx.now(),
  };
  await ctx.blobs.put(blobKeys.state(workspaceId, row.id), body);
  await repo.insertStateVersion(ctx.db, row);
  rememberMd5(row.id, createHash('md5').update(body).digest('hex'));
  return row;
}

// The MD5 TFE shows of a state version, kept in memory: the table has no
// column for it, a state version never changes, and a replica that does
// not know it reads the file once.
const md5s = new Map<string, string>();
const md5sKept = 10_000;

function rememberMd5(id: string, md5: string): void {
  md5s.set(id, md5);
  if (md5s.size > md5sKept) md5s.delete(md5s.keys().next().value as string);
}

/** The MD5 (hex) of a state version's file; null when the file is missing. */
export async function md5Of(ctx: ServerContext, row: repo.StateVersionRow): Promise<string | null> {
  const known = md5s.get(row.id);
  if (known !== undefined) return known;
  const blob = await ctx.blobs.stream(blobKeys.state(row.workspace_id, row.id));
  if (!blob) return null;
  const hash = createHash('md5');
  for await (const chunk of blob.stream) hash.update(chunk as Buffer);
  const md5 = hash.digest('hex');
  rememberMd5(row.id, md5);
  return md5;
}

export async function loadCurrentState(ctx: ServerContext, workspaceId: string): Promise<Buffer | undefined> {
  const current = await repo.currentStateVersion(ctx.db, workspaceId);
  return current ? ctx.blobs.get(blobKeys.state(workspaceId, current.id)) : undefined;
}

export interface LockInfo {
  ID: string;
  [key: string]: unknown;
}

/**
 * The holder's LockInfo as another job may see it: the lock id is left out,
 * since only the job that took the lock has any use for it.
 */
function holderView(holder: repo.StateLockRow, jobId: string | null): Partial<LockInfo> {
  const info = JSON.parse(holder.info) as Partial<LockInfo>;
  if (holder.job_id !== null && holder.job_id === jobId) return info;
  const { ID: _id, ...rest } = info;
  return rest;
}

/** Returns undefined when the lock was taken, or the holder's LockInfo (see holderView). */
export async function lockState(ctx: ServerContext, workspaceId: string, info: LockInfo, jobId: string | null): Promise<Partial<LockInfo> | undefined> {
  // The holder may unlock between our failed insert and our read: try again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const taken = await repo.insertLock(ctx.db, {
      workspace_id: workspaceId,
      lock_id: info.ID,
      info: JSON.stringify(info),
      job_id: jobId,
      created_at: ctx.now(),
      token_id: null,
    });
    if (taken) return undefined;
    const holder = await repo.findLock(ctx.db, workspaceId);
    // The engine retrying a lock request whose answer it lost (a control
    // plane restart): the lock it asks for is already its own.
    if (holder && jobId !== null && holder.job_id === jobId && holder.lock_id === info.ID) return undefined;
    if (holder) return holderView(holder, jobId);
  }
  throw new OutpostError('state_locked', 'the state lock is changing hands too quickly; try again');
}

/**
 * Releases the lock `lockId` if this job took it; a lock that is already free
 * is fine. Anything else is refused without describing the holder: a job may
 * not break (or learn how to break) another job's lock.
 */
export async function unlockState(ctx: ServerContext, workspaceId: string, lockId: string, jobId: string): Promise<void> {
  if (await repo.deleteLock(ctx.db, workspaceId, lockId, jobId)) return;
  const holder = await repo.findLock(ctx.db, workspaceId);
  if (!holder) return;
  if (holder.token_id !== null) throw new OutpostError('state_lock_mismatch', 'the state is locked by a user (the workspace lock); only they, or a force-unlock, may release it');
  if (holder.job_id !== jobId) throw new OutpostError('state_lock_mismatch', 'the state is locked by another job; only the job that took the lock may release it');
  throw new OutpostError('state_lock_mismatch', 'the lock id does not match the lock this job holds');
}

export function parseOutputs(row: repo.StateVersionRow): StateOutput[] {
  return JSON.parse(row.outputs) as StateOutput[];
}

/** A state version the caller may see: one of a workspace of its organization. */
export async function requireStateVersion(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.StateVersionRow> {
  const row = await repo.findStateVersion(ctx.db, id);
  const workspace = row ? await findWorkspace(ctx.db, row.workspace_id) : undefined;
  if (!row || workspace?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `state version ${id} not found`);
  return row;
}

/** A page of the state versions of a workspace the caller may see (workspaces/service requireWorkspace), newest first, and how many there are. */
export async function listStateVersions(ctx: ServerContext, workspace: WorkspaceRow, page: PageRequest): Promise<{ rows: repo.StateVersionRow[]; total: number }> {
  const rows = await repo.listStateVersions(ctx.db, workspace.id, (page.number - 1) * page.size, page.size);
  return { rows, total: await repo.countStateVersions(ctx.db, workspace.id) };
}

/** The current state version of a workspace the caller may see, if it has state. */
export async function findCurrentStateVersion(ctx: ServerContext, workspace: WorkspaceRow): Promise<repo.StateVersionRow | undefined> {
  return repo.currentStateVersion(ctx.db, workspace.id);
}

export async function requireCurrentStateVersion(ctx: ServerContext, workspace: WorkspaceRow): Promise<repo.StateVersionRow> {
  const row = await repo.currentStateVersion(ctx.db, workspace.id);
  if (!row) throw new OutpostError('not_found', `workspace ${workspace.name} has no state yet`);
  return row;
}

/** The state file of a state version the caller may see, as the engine wrote it. */
export async function stateFileOf(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<{ stream: Readable; size: number }> {
  return fileOf(ctx, await requireStateVersion(ctx, principal, id));
}

/**
 * The state file behind a pre-signed URL: the signature (checked by the
 * route) is the credential, so no principal is asked for.
 */
export async function stateFileBySignedUrl(ctx: ServerContext, id: string): Promise<{ stream: Readable; size: number }> {
  const row = await repo.findStateVersion(ctx.db, id);
  if (!row) throw new OutpostError('not_found', `state version ${id} not found`);
  return fileOf(ctx, row);
}

async function fileOf(ctx: ServerContext, row: repo.StateVersionRow): Promise<{ stream: Readable; size: number }> {
  const blob = await ctx.blobs.stream(blobKeys.state(row.workspace_id, row.id));
  if (!blob) throw new OutpostError('not_found', `state version ${row.id} has no stored file`);
  return blob;
}

/** The parsed state file of a state version (to read a sensitive output's value); never log it. */
export async function stateDocumentOf(ctx: ServerContext, row: repo.StateVersionRow): Promise<StateDocument> {
  const body = await ctx.blobs.get(blobKeys.state(row.workspace_id, row.id));
  if (!body) throw new OutpostError('not_found', `state version ${row.id} has no stored file`);
  return parseState(body);
}

/** The state a job's engine reads through the HTTP backend: its workspace's current one, if any. */
export async function currentStateForJob(ctx: ServerContext, { workspace }: JobScope): Promise<Buffer | undefined> {
  return loadCurrentState(ctx, workspace.id);
}

/** A state the engine of an apply job saves, under the lock `lockId` it holds (if any). */
export async function saveStateFromJob(ctx: ServerContext, { job, run, workspace }: JobScope, lockId: string | undefined, body: Buffer): Promise<void> {
  // Only an apply changes state; a plan (which OpenTofu never persists) may not.
  if (run.plan_only === 1 || job.kind !== 'apply') throw new OutpostError('forbidden', 'only an apply job may write state');
  await saveState(ctx, workspace.id, { runId: run.id, jobId: job.id, lockId }, body);
}

/**
 * Whether a job may take or release its workspace's state lock: not a
 * plan-only run's, which plans with `-lock=false` and may not hold up the
 * workspace. Checked before the lock request's body is read.
 */
export function requireMayLockState({ run }: JobScope, action: 'lock' | 'unlock'): void {
  if (run.plan_only === 1) throw new OutpostError('forbidden', `a plan-only run may not ${action} state`);
}

/** Locks the workspace's state for a job (requireMayLockState first); returns the holder's LockInfo when another job holds it. */
export async function lockStateForJob(ctx: ServerContext, { job, workspace }: JobScope, info: LockInfo): Promise<Partial<LockInfo> | undefined> {
  return lockState(ctx, workspace.id, info, job.id);
}

export async function unlockStateForJob(ctx: ServerContext, { job, workspace }: JobScope, lockId: string): Promise<void> {
  await unlockState(ctx, workspace.id, lockId, job.id);
}
