// Configuration versions: create, then PUT the .tar.gz to its upload-url.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { configurationVersionInput } from '../../protocol/api-inputs.ts';
import type { ConfigurationVersion } from '../../protocol/api-resources.ts';
import type { IngressAttributes } from '../../protocol/vcs-api.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import type { ConfigurationVersionRow } from './repo.ts';
import { createConfigurationVersion, requireConfigurationVersion, uploadConfiguration } from './service.ts';

const createVersion = z.object({
  data: z
    .object({
      type: z.literal('configuration-versions'),
      attributes: configurationVersionInput.default({}),
    })
    .default({ type: 'configuration-versions', attributes: {} }),
});

function present(ctx: ServerContext, row: ConfigurationVersionRow): ConfigurationVersion {
  return {
    id: row.id,
    type: 'configuration-versions',
    attributes: {
      status: row.status,
      source: row.source,
      size: row.size,
      'auto-queue-runs': false,
      'created-at': iso(row.created_at),
      'uploaded-at': iso(row.uploaded_at),
      'upload-url': row.status === 'pending' ? `${ctx.publicUrl}/api/v2/configuration-versions/${row.id}/upload` : null,
      'ingress-attributes': row.ingress === null ? null : (JSON.parse(row.ingress) as IngressAttributes),
    },
    relationships: { workspace: relation('workspaces', row.workspace_id) },
  };
}

export function configurationVersionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/configuration-versions', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    parseBody(createVersion, request.body ?? {});
    return reply.status(201).send({ data: present(ctx, await createConfigurationVersion(ctx, workspace)) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/configuration-versions/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(ctx, await requireConfigurationVersion(ctx, principal, request.params.id)) };
  });

  app.put<{ Params: { id: string } }>(
    '/api/v2/configuration-versions/:id/upload',
    { bodyLimit: ctx.config.maxUploadMb * 1024 * 1024 },
    async (request, reply) => {
      const principal = await authenticateApi(ctx, request);
      // Anything but bytes (a JSON body, say) is no archive.
      const archive = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      await uploadConfiguration(ctx, principal, request.params.id, archive);
      return reply.status(200).send();
    },
  );
}
