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

/** A new, pending configuration version of a workspace the caller may see (workspaces/service requireWorkspace). */
export async function createConfigurationVersion(ctx: ServerContext, workspace: WorkspaceRow): Promise<repo.ConfigurationVersionRow> {
  const row = { id: newId('cv'), workspace_id: workspace.id, status: 'pending', size: null, created_at: ctx.now(), uploaded_at: null, source: 'tfe-api', ingress: null } as const;
  await repo.insertConfigurationVersion(ctx.db, row);
  return row;
}

/** A configuration version the caller may see: one of a workspace of its organization. */
export async function requireConfigurationVersion(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.ConfigurationVersionRow> {
  const row = await repo.findConfigurationVersion(ctx.db, id);
  const workspace = row ? await findWorkspace(ctx.db, row.workspace_id) : undefined;
  if (!row || workspace?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `configuration version ${id} not found`);
  return row;
}

/** Stores the archive of a pending configuration version; it is then `uploaded`, for good. */
export async function uploadConfiguration(ctx: ServerContext, principal: ApiPrincipal, id: string, archive: Buffer): Promise<void> {
  const row = await requireConfigurationVersion(ctx, principal, id);
  if (row.status !== 'pending') throw new OutpostError('conflict', `configuration version ${row.id} was already uploaded`);
  if (archive.length === 0) {
    throw new OutpostError('invalid_request', 'send the .tar.gz archive as the request body (Content-Type: application/octet-stream)');
  }
  if (archive[0] !== 0x1f || archive[1] !== 0x8b) throw new OutpostError('archive_invalid', 'the upload is not a gzip-compressed tar archive');
  await ctx.blobs.put(blobKeys.configuration(row.id), archive);
  await repo.updateConfigurationVersion(ctx.db, row.id, { status: 'uploaded', size: archive.length, uploaded_at: ctx.now() });
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
  const row = { id, workspace_id: workspaceId, status: 'uploaded', size: archive.length, created_at: now, uploaded_at: now, source, ingress: JSON.stringify(ingress) } as const;
  await repo.insertConfigurationVersion(ctx.db, row);
  return row;
}

/** The commits of configuration versions from version control, by id (uploads have none). */
export async function ingressOf(ctx: ServerContext, ids: readonly string[]): Promise<Map<string, IngressAttributes>> {
  const rows = ids.length === 0 ? [] : await repo.findConfigurationVersions(ctx.db, [...new Set(ids)]);
  return new Map(rows.filter((row) => row.ingress !== null).map((row) => [row.id, JSON.parse(row.ingress!) as IngressAttributes]));
}
