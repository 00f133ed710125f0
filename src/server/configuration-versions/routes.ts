// Configuration versions: create, then PUT the .tar.gz to its upload-url,
// a pre-signed URL (TFE's clients send no token there). The token-checked
// upload route stays for clients that PUT with their token.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { configurationVersionInput } from '../../protocol/api-inputs.ts';
import { parseBody } from '../http/json-api.ts';
import { paginate } from '../http/pagination.ts';
import { present, uploadObject } from './presenter.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import type { ConfigurationVersionRow } from './repo.ts';
import { queueRunOfUpload, requireRunsCanQueue } from '../runs/service.ts';
import { signedRoutePrefix, type SignedParams } from '../http/signed-urls.ts';
import { configurationSourceOf, tfeClientOf } from '../http/tfe-clients.ts';
import {
  configurationArchiveOf,
  createConfigurationVersion,
  findConfigurationVersionById,
  listConfigurationVersions,
  requireConfigurationVersion,
  uploadConfiguration,
} from './service.ts';

const createVersion = z.object({
  data: z
    .object({
      type: z.literal('configuration-versions'),
      attributes: configurationVersionInput.default({}),
    })
    .default({ type: 'configuration-versions', attributes: {} }),
});

/** Stores an upload; an auto-queuing configuration version then queues its run. */
async function receiveUpload(ctx: ServerContext, row: ConfigurationVersionRow, body: unknown): Promise<void> {
  // Checked first: a refused run must not leave the version uploaded and unusable.
  if (row.auto_queue_runs === 1) await requireRunsCanQueue(ctx, row.workspace_id);
  // Anything but bytes (a JSON body, say) is no archive.
  const uploaded = await uploadConfiguration(ctx, row, Buffer.isBuffer(body) ? body : Buffer.alloc(0));
  if (uploaded.auto_queue_runs === 1) await queueRunOfUpload(ctx, uploaded);
}

export function configurationVersionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/configuration-versions', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const attributes = parseBody(createVersion, request.body ?? {}).data.attributes;
    const created = await createConfigurationVersion(ctx, workspace, {
      speculative: attributes.speculative ?? false,
      autoQueueRuns: attributes['auto-queue-runs'] ?? false,
      source: configurationSourceOf(tfeClientOf(request)),
    });
    return reply.status(201).send({ data: present(ctx, created) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/configuration-versions', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const page = paginate(ctx, request, await listConfigurationVersions(ctx, workspace));
    return { data: page.items.map((row) => present(ctx, row)), meta: page.meta, links: page.links };
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
      await receiveUpload(ctx, await requireConfigurationVersion(ctx, principal, request.params.id), request.body);
      return reply.status(200).send();
    },
  );

  app.put<{ Params: SignedParams & { id: string } }>(
    `${signedRoutePrefix}configuration-versions/:id/upload`,
    { bodyLimit: ctx.config.maxUploadMb * 1024 * 1024 },
    async (request, reply) => {
      // The signature is the credential; a token sent along changes nothing.
      ctx.signer.verify('PUT', uploadObject(request.params.id), request.params.grant, ctx.now());
      await receiveUpload(ctx, await findConfigurationVersionById(ctx, request.params.id), request.body);
      return reply.status(200).send();
    },
  );

  app.get<{ Params: { id: string } }>('/api/v2/configuration-versions/:id/download', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const archive = await configurationArchiveOf(ctx, principal, request.params.id);
    return reply.header('content-type', 'application/octet-stream').send(archive);
  });
}
