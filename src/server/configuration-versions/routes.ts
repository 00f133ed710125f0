// Configuration versions: create, then PUT the .tar.gz to its upload-url.
// The server checks size and gzip framing; the job operation inspects every
// entry when it extracts (it must, since VCS archives will not pass here).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { iso, parseBody, relation, type ResourceObject } from '../http/json-api.ts';
import { newId } from '../ids.ts';
import { findWorkspace } from '../workspaces/repo.ts';
import { requireWorkspace } from '../workspaces/routes.ts';
import * as repo from './repo.ts';

const createVersion = z.object({
  data: z
    .object({
      type: z.literal('configuration-versions'),
      attributes: z.object({ 'auto-queue-runs': z.boolean().optional(), speculative: z.boolean().optional() }).default({}),
    })
    .default({ type: 'configuration-versions', attributes: {} }),
});

function present(ctx: ServerContext, row: repo.ConfigurationVersionRow): ResourceObject {
  return {
    id: row.id,
    type: 'configuration-versions',
    attributes: {
      status: row.status,
      source: 'tfe-api',
      size: row.size,
      'auto-queue-runs': false,
      'created-at': iso(row.created_at),
      'uploaded-at': iso(row.uploaded_at),
      'upload-url': row.status === 'pending' ? `${ctx.publicUrl}/api/v2/configuration-versions/${row.id}/upload` : null,
    },
    relationships: { workspace: relation('workspaces', row.workspace_id) },
  };
}

export function configurationVersionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/configuration-versions', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    parseBody(createVersion, request.body ?? {});
    const row = { id: newId('cv'), workspace_id: workspace.id, status: 'pending', size: null, created_at: ctx.now(), uploaded_at: null } as const;
    await repo.insertConfigurationVersion(ctx.db, row);
    return reply.status(201).send({ data: present(ctx, row) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/configuration-versions/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const row = await repo.findConfigurationVersion(ctx.db, request.params.id);
    const workspace = row ? await findWorkspace(ctx.db, row.workspace_id) : undefined;
    if (!row || workspace?.organization_id !== principal.organizationId) {
      throw new OutpostError('not_found', `configuration version ${request.params.id} not found`);
    }
    return { data: present(ctx, row) };
  });

  app.put<{ Params: { id: string } }>(
    '/api/v2/configuration-versions/:id/upload',
    { bodyLimit: ctx.config.maxUploadMb * 1024 * 1024 },
    async (request, reply) => {
      const principal = await authenticateApi(ctx, request);
      const row = await repo.findConfigurationVersion(ctx.db, request.params.id);
      const workspace = row ? await findWorkspace(ctx.db, row.workspace_id) : undefined;
      if (!row || workspace?.organization_id !== principal.organizationId) {
        throw new OutpostError('not_found', `configuration version ${request.params.id} not found`);
      }
      if (row.status !== 'pending') throw new OutpostError('conflict', `configuration version ${row.id} was already uploaded`);
      const body = request.body;
      if (!Buffer.isBuffer(body) || body.length === 0) {
        throw new OutpostError('invalid_request', 'send the .tar.gz archive as the request body (Content-Type: application/octet-stream)');
      }
      if (body[0] !== 0x1f || body[1] !== 0x8b) {
        throw new OutpostError('archive_invalid', 'the upload is not a gzip-compressed tar archive');
      }
      await ctx.blobs.put(blobKeys.configuration(row.id), body);
      await repo.updateConfigurationVersion(ctx.db, row.id, { status: 'uploaded', size: body.length, uploaded_at: ctx.now() });
      return reply.status(200).send();
    },
  );
}
