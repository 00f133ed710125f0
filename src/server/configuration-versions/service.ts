// Configuration versions: created pending, then uploaded once, or made
// from a commit fetched from version control. The server checks size (the
// route's body limit, or the fetch's) and gzip framing; the job operation
// inspects every entry when it extracts, so uploads and commits meet the
// same hostile-content checks.
import { OutpostError } from '../../protocol/errors.ts';
import type { IngressAttributes } from '../../protocol/vcs-api.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import { newId } from '../ids.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { findWorkspace, type WorkspaceRow } from '../workspaces/repo.ts';
import * as repo from './repo.ts';

export interface ConfigurationVersionOptions {
  /** Runs of it are plan-only and never hold the workspace (what `tofu plan` uploads). */
  speculative: boolean;
  /** The upload queues a run at once (TFE's default; Outpost's is false, see docs/api.md). */
  autoQueueRuns: boolean;
  /** TFE's name of the client: `tfe-api`, `terraform+cloud` (the tofu CLI's cloud block), `terraform` (its remote backend). */
  source: string;
}

/** A new, pending configuration version of a workspace the caller may see (workspaces/service requireWorkspace). */
export async function createConfigurationVersion(ctx: ServerContext, workspace: WorkspaceRow, options: ConfigurationVersionOptions): Promise<repo.ConfigurationVersionRow> {
  const row = {
    id: newId('cv'),
    workspace_id: workspace.id,
    status: 'pending',
    size: null,
    created_at: ctx.now(),
    uploaded_at: null,
    source: options.source,
    ingress: null,
    speculative: options.speculative ? 1 : 0,
    auto_queue_runs: options.autoQueueRuns ? 1 : 0,
  } as const;
  await repo.insertConfigurationVersion(ctx.db, row);
  return row;
}

/** The configuration versions of a workspace the caller may see (requireWorkspace), newest first; the newest 10 000. */
export async function listConfigurationVersions(ctx: ServerContext, workspace: WorkspaceRow): Promise<repo.ConfigurationVersionRow[]> {
  return repo.listConfigurationVersions(ctx.db, workspace.id, 10_000);
}

/** Any configuration version by id, for a request whose pre-signed URL already proves what it may do. */
export async function findConfigurationVersionById(ctx: ServerContext, id: string): Promise<repo.ConfigurationVersionRow> {
  const row = await repo.findConfigurationVersion(ctx.db, id);
  if (!row) throw new OutpostError('not_found', `configuration version ${id} not found`);
  return row;
}

/** The archive of an uploaded configuration version the caller may see. */
export async function configurationArchiveOf(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<Buffer> {
  const row = await requireConfigurationVersion(ctx, principal, id);
  if (row.status !== 'uploaded') throw new OutpostError('conflict', `configuration version ${row.id} is ${row.status}; there is nothing to download`);
  const archive = await ctx.blobs.get(blobKeys.configuration(row.id));
  if (!archive) throw new OutpostError('not_found', `the archive of configuration version ${row.id} is no longer stored`);
  return archive;
}

/** A configuration version the caller may see: one of a workspace of its organization. */
export async function requireConfigurationVersion(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.ConfigurationVersionRow> {
  const row = await repo.findConfigurationVersion(ctx.db, id);
  const workspace = row ? await findWorkspace(ctx.db, row.workspace_id) : undefined;
  if (!row || workspace?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `configuration version ${id} not found`);
  return row;
}

/**
 * Stores the archive of a pending configuration version (one the caller may
 * see, or one a pre-signed URL names); it is then `uploaded`, for good.
 * Returns it as uploaded: the caller queues its run when it auto-queues.
 */
export async function uploadConfiguration(ctx: ServerContext, row: repo.ConfigurationVersionRow, archive: Buffer): Promise<repo.ConfigurationVersionRow> {
  if (row.status !== 'pending') throw new OutpostError('conflict', `configuration version ${row.id} was already uploaded`);
  if (archive.length === 0) {
    throw new OutpostError('invalid_request', 'send the .tar.gz archive as the request body (Content-Type: application/octet-stream)');
  }
  if (archive[0] !== 0x1f || archive[1] !== 0x8b) throw new OutpostError('archive_invalid', 'the upload is not a gzip-compressed tar archive');
  await ctx.blobs.put(blobKeys.configuration(row.id), archive);
  const uploaded = { status: 'uploaded', size: archive.length, uploaded_at: ctx.now() } as const;
  // Two uploads at once both pass the check above; one of them marks it, the other is told.
  if (!(await repo.markUploaded(ctx.db, row.id, uploaded))) throw new OutpostError('conflict', `configuration version ${row.id} was already uploaded`);
  return { ...row, ...uploaded };
}

/** A configuration version made from a commit's archive (src/server/vcs): uploaded from the start, and says which commit it is. */
export async function createFetchedConfigurationVersion(
  ctx: ServerContext,
  workspaceId: string,
  archive: Buffer,
  source: string,
  ingress: IngressAttributes,
): Promise<repo.ConfigurationVersionRow> {
  if (archive[0] !== 0x1f || archive[1] !== 0x8b) throw new OutpostError('archive_invalid', 'the fetched commit is not a gzip-compressed tar archive');
  const id = newId('cv');
  await ctx.blobs.put(blobKeys.configuration(id), archive);
  const now = ctx.now();
  const row = {
    id,
    workspace_id: workspaceId,
    status: 'uploaded',
    size: archive.length,
    created_at: now,
    uploaded_at: now,
    source,
    ingress: JSON.stringify(ingress),
    speculative: 0,
    auto_queue_runs: 0,
  } as const;
  await repo.insertConfigurationVersion(ctx.db, row);
  return row;
}

/** The commits of configuration versions from version control, by id (uploads have none). */
export async function ingressOf(ctx: ServerContext, ids: readonly string[]): Promise<Map<string, IngressAttributes>> {
  const rows = ids.length === 0 ? [] : await repo.findConfigurationVersions(ctx.db, [...new Set(ids)]);
  return new Map(rows.filter((row) => row.ingress !== null).map((row) => [row.id, JSON.parse(row.ingress!) as IngressAttributes]));
}
