// A state version a user creates through the API (TFE's StateVersions.Create):
// what the `tofu` CLI sends when it runs the engine itself (a workspace in
// `local` execution mode, `tofu state push`). The state travels base64 in the
// JSON:API document with its MD5, serial and lineage; those are checked
// against the decoded state so a garbled or mismatched upload is refused
// rather than stored. The caller's API token must hold the workspace's lock.
import { createHash } from 'node:crypto';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import type { WorkspaceRow } from '../workspaces/repo.ts';
import * as repo from './repo.ts';
import { md5Of, parseState, storeState, type StateDocument } from './service.ts';
import { requireLockedByCaller } from './workspace-lock.ts';

export interface StateVersionInput {
  serial: number;
  md5: string;
  lineage?: string | undefined;
  /** Base64 of the state file. */
  state?: string | undefined;
  /** Base64 of `tofu show -json`'s state and of its outputs: checked to decode, not kept. */
  jsonState?: string | undefined;
  jsonStateOutputs?: string | undefined;
  force?: boolean | undefined;
  runId?: string | undefined;
}

// go-tfe's Upload first creates a state version without the state, to
// upload it to the returned URLs; on an error with exactly these words it
// falls back to sending the state inline (Create), which is what this
// server takes.
const missingState = 'param is missing or the value is empty: state';

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes standard base64 (padded, as Go's encoder writes it); anything else is 422, not silently skipped characters. */
function decodeBase64(field: string, value: string): Buffer {
  if (!base64.test(value)) throw new OutpostError('validation_failed', `data.attributes.${field} is not valid base64`);
  return Buffer.from(value, 'base64');
}

/**
 * TFE's checks of a state against the current one, in its words: the same
 * serial of the same lineage must be the same state (then it is the
 * existing version, so a client retrying an upload whose answer it lost
 * succeeds), and another lineage needs `force` (`tofu state push -force`).
 * An older serial is refused by storeState, which the engine's writes share.
 * Returns the current version when the state is it.
 */
async function checkAgainstCurrent(ctx: ServerContext, workspace: WorkspaceRow, doc: StateDocument, md5: string, force: boolean): Promise<repo.StateVersionRow | undefined> {
  const current = await repo.currentStateVersion(ctx.db, workspace.id);
  if (!current) return undefined;
  if (current.lineage === doc.lineage && current.serial === doc.serial) {
    // A current version whose file is missing has no MD5 to compare: the new one replaces it.
    const currentMd5 = await md5Of(ctx, current);
    if (currentMd5 === md5) return current;
    if (currentMd5 !== null && !force) {
      throw new OutpostError('conflict', `The MD5 hash of the state provided does not match what is currently known for the same serial number (serial ${doc.serial}); push a higher serial, or force it`);
    }
  }
  if (current.lineage !== doc.lineage && !force) {
    throw new OutpostError('conflict', `The lineage provided in the state file does not match the value currently known ("${doc.lineage}" is not "${current.lineage}"); force it to replace the state`);
  }
  return undefined;
}

/**
 * Creates a state version in a workspace the caller may see (workspaces/service
 * requireWorkspace); `created` is false when the state is the current version already.
 */
export async function createStateVersion(ctx: ServerContext, principal: ApiPrincipal, workspace: WorkspaceRow, input: StateVersionInput): Promise<{ row: repo.StateVersionRow; created: boolean }> {
  if (input.state === undefined || input.state === '') {
    throw new OutpostError('validation_failed', `${missingState} (this server takes the state inline in data.attributes.state, base64; it has no upload URLs)`);
  }
  await requireLockedByCaller(ctx, principal, workspace);

  const body = decodeBase64('state', input.state);
  // The JSON forms are not kept, but a client sending garbage is told so.
  if (input.jsonState) decodeBase64('json-state', input.jsonState);
  if (input.jsonStateOutputs) decodeBase64('json-state-outputs', input.jsonStateOutputs);
  if (body.length > ctx.config.maxStateMb * 1024 * 1024) {
    throw new OutpostError('payload_too_large', `the state is ${body.length} bytes, more than this server accepts (OUTPOST_MAX_STATE_MB=${ctx.config.maxStateMb})`);
  }
  const md5 = createHash('md5').update(body).digest('hex');
  if (input.md5.toLowerCase() !== md5) {
    throw new OutpostError('validation_failed', `data.attributes.md5 ${input.md5} is not the MD5 of the decoded state (${md5}): the state was changed or cut on the way`);
  }
  const doc = parseState(body);
  if (input.serial !== doc.serial) {
    throw new OutpostError('validation_failed', `data.attributes.serial ${input.serial} does not match the serial ${doc.serial} in the state`);
  }
  if (input.lineage !== undefined && input.lineage !== '' && input.lineage !== doc.lineage) {
    throw new OutpostError('validation_failed', `data.attributes.lineage "${input.lineage}" does not match the lineage "${doc.lineage}" in the state`);
  }
  if (input.runId !== undefined && !(await repo.isRunOfWorkspace(ctx.db, input.runId, workspace.id))) {
    throw new OutpostError('not_found', `run ${input.runId} not found in workspace ${workspace.name}`);
  }
  const existing = await checkAgainstCurrent(ctx, workspace, doc, md5, input.force === true);
  if (existing) return { row: existing, created: false };
  const row = await storeState(ctx, workspace.id, { runId: input.runId ?? null, jobId: null, lockId: undefined, tokenId: principal.tokenId, force: input.force }, body, doc);
  return { row, created: true };
}
