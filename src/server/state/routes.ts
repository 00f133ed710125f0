// State versions and their outputs as users see them (TFE: state-versions,
// current-state-version, state-version-outputs), the state versions a user
// creates (the `tofu` CLI running the engine itself), and the pre-signed
// download of a state file that TFE's clients follow without a token.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { asksForPage, pageOf, paginate, pagination, wholeList } from '../http/pagination.ts';
import { signedRoutePrefix, type SignedParams } from '../http/signed-urls.ts';
import { includeQuery } from '../runs/included.ts';
import { getWorkspaceByName, requireWorkspace } from '../workspaces/service.ts';
import { createStateVersion } from './create-state-version.ts';
import { currentOutputs, outputsOf, requireOutput, type OutputView } from './outputs.ts';
import { downloadObject, presentOutput, presentStateVersion, presentStateVersions, stateVersionDocument } from './presenter.ts';
import { listStateVersions, requireCurrentStateVersion, requireStateVersion, stateFileBySignedUrl, stateFileOf } from './service.ts';

// go-tfe's StateVersionCreateOptions: every attribute but serial and md5 may
// be left out; json-state may arrive empty (the CLI sends what it has).
const createBody = z.object({
  data: z.object({
    type: z.literal('state-versions'),
    attributes: z.object({
      serial: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      md5: z.string().min(1).max(64),
      lineage: z.string().max(1024).optional(),
      state: z.string().optional(),
      'json-state': z.string().optional(),
      'json-state-outputs': z.string().optional(),
      force: z.boolean().optional(),
    }),
    relationships: z.object({ run: z.object({ data: z.object({ type: z.literal('runs'), id: z.string().min(1).max(64) }).nullable() }).optional() }).optional(),
  }),
});

const listQuery = z.looseObject({
  'filter[organization][name]': z.string({ error: 'is required: the organization of the workspace' }).min(1),
  'filter[workspace][name]': z.string({ error: 'is required: the name of the workspace' }).min(1),
});

/** The outputs as one page unless a page is asked for: the `tofu` CLI reads only the first. */
function outputList(ctx: ServerContext, request: FastifyRequest, outputs: OutputView[]) {
  const page = asksForPage(request) ? paginate(ctx, request, outputs) : wholeList(ctx, request, outputs);
  return { data: page.items.map(presentOutput), meta: page.meta, links: page.links };
}

export function stateRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const maxState = ctx.config.maxStateMb * 1024 * 1024;
  // The state goes base64 (4/3 of it), and the JSON forms the CLI sends
  // along can be as large again; past 512 MiB a body is no longer a string.
  const createBodyLimit = Math.min(Math.ceil((maxState * 4) / 3) * 3 + 1024 * 1024, 512 * 1024 * 1024);

  async function page(request: FastifyRequest, workspace: Parameters<typeof listStateVersions>[1]) {
    const asked = pageOf(request);
    const { rows, total } = await listStateVersions(ctx, workspace, asked);
    return { data: await presentStateVersions(ctx, rows), ...pagination(ctx, request, asked, total) };
  }

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/state-versions', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return page(request, await requireWorkspace(ctx, principal, request.params.id));
  });

  app.get('/api/v2/state-versions', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const query = parseBody(listQuery, request.query ?? {});
    return page(request, await getWorkspaceByName(ctx, principal, query['filter[organization][name]'], query['filter[workspace][name]']));
  });

  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/state-versions', { bodyLimit: createBodyLimit }, async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const { attributes, relationships } = parseBody(createBody, request.body).data;
    const { row, created } = await createStateVersion(ctx, principal, workspace, {
      serial: attributes.serial,
      md5: attributes.md5,
      lineage: attributes.lineage,
      state: attributes.state,
      jsonState: attributes['json-state'],
      jsonStateOutputs: attributes['json-state-outputs'],
      force: attributes.force,
      runId: relationships?.run?.data?.id,
    });
    // The state already the current version is that version, not a new one (go-tfe takes any 2xx).
    return reply.status(created ? 201 : 200).send({ data: await presentStateVersion(ctx, row) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/current-state-version', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const { include } = parseBody(includeQuery, request.query ?? {});
    return stateVersionDocument(ctx, await requireCurrentStateVersion(ctx, workspace), include);
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const { include } = parseBody(includeQuery, request.query ?? {});
    return stateVersionDocument(ctx, await requireStateVersion(ctx, principal, request.params.id), include);
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id/download', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const blob = await stateFileOf(ctx, principal, request.params.id);
    return reply.header('content-type', 'application/json').header('content-length', blob.size).send(blob.stream);
  });

  app.get<{ Params: SignedParams & { id: string } }>(`${signedRoutePrefix}state-versions/:id/download`, async (request, reply) => {
    // The signature is the credential; a token sent along (go-tfe sends its own) changes nothing.
    ctx.signer.verify(request.method, downloadObject(request.params.id), request.params.grant, ctx.now());
    const blob = await stateFileBySignedUrl(ctx, request.params.id);
    return reply.header('content-type', 'application/json').header('content-length', blob.size).send(blob.stream);
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-versions/:id/outputs', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return outputList(ctx, request, outputsOf(await requireStateVersion(ctx, principal, request.params.id)));
  });

  app.get<{ Params: { id: string } }>('/api/v2/workspaces/:id/current-state-version-outputs', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return outputList(ctx, request, await currentOutputs(ctx, await requireWorkspace(ctx, principal, request.params.id)));
  });

  app.get<{ Params: { id: string } }>('/api/v2/state-version-outputs/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentOutput(await requireOutput(ctx, principal, request.params.id)) };
  });
}
