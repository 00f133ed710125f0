// Version control providers (TFE's closest: oauth-clients/oauth-tokens, kept
// as one resource), their webhook deliveries, the webhook endpoint forges
// call, and what version control did for a workspace.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requestOf } from '../../protocol/api-inputs.ts';
import type { VcsDelivery, VcsProvider, VcsRepositoryCheck, VcsTrigger } from '../../protocol/api-resources.ts';
import { vcsProviderInput, vcsProviderUpdate } from '../../protocol/vcs-api.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import { bodyBytes, rawBodyRoutes } from '../http/raw-body.ts';
import { requireOrganization } from '../organizations/service.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import { checkRepository } from './check.ts';
import { acceptWebhook } from './ingress.ts';
import type { DeliveryRow, ProviderRow, TriggerRow } from './repo.ts';
import {
  createProvider,
  deleteProvider,
  listDeliveries,
  listProviders,
  listTriggers,
  openCredentials,
  requireProvider,
  rotateWebhookSecret,
  updateProvider,
} from './service.ts';

const createBody = requestOf('vcs-providers', vcsProviderInput);
const updateBody = requestOf('vcs-providers', vcsProviderUpdate);
const rotateBody = z.object({ 'overlap-seconds': z.number().int().min(0).max(7 * 86_400).default(3_600) });
const checkBody = z.object({ repository: z.string().min(1).max(1024) });
const listQuery = z.object({ 'page[size]': z.coerce.number().int().min(1).max(100).default(20) });

export function webhookUrlOf(ctx: ServerContext, provider: ProviderRow): string | null {
  if (provider.kind === 'git') return null;
  return provider.pool_id ? null : `${ctx.publicUrl}/api/v2/vcs-providers/${provider.id}/webhook`;
}

function presentProvider(ctx: ServerContext, row: ProviderRow, webhookSecret?: string): VcsProvider {
  const credentials = openCredentials(ctx, row);
  return {
    id: row.id,
    type: 'vcs-providers',
    attributes: {
      name: row.name,
      kind: row.kind,
      'http-url': row.http_url,
      'api-url': row.api_url,
      'has-token': Boolean(credentials.token),
      'has-ssh-key': Boolean(credentials.ssh_key),
      'poll-interval': Math.round(Number(row.poll_interval_ms) / 1000),
      'webhook-url': webhookUrlOf(ctx, row),
      ...(webhookSecret ? { 'webhook-secret': webhookSecret } : {}),
      'created-at': iso(row.created_at),
    },
    relationships: { organization: relation('organizations', row.organization_id), 'agent-pool': relation('agent-pools', row.pool_id) },
  };
}

function presentDelivery(row: DeliveryRow): VcsDelivery {
  return {
    id: row.id,
    type: 'vcs-deliveries',
    attributes: { 'delivery-id': row.delivery_id, event: row.event, outcome: row.outcome, 'received-at': iso(row.received_at) },
    relationships: { 'vcs-provider': relation('vcs-providers', row.provider_id) },
  };
}

function presentTrigger(row: TriggerRow): VcsTrigger {
  return {
    id: row.id,
    type: 'vcs-triggers',
    attributes: {
      kind: row.kind,
      'commit-sha': row.sha,
      ref: row.ref,
      status: row.status,
      reason: row.reason,
      'changed-files': row.changed_files === null ? null : (JSON.parse(row.changed_files) as string[]).slice(0, 100),
      'created-at': iso(row.created_at),
    },
    relationships: { workspace: relation('workspaces', row.workspace_id), run: relation('runs', row.run_id) },
  };
}

export function vcsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/vcs-providers', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const org = await requireOrganization(ctx, principal, request.params.org);
    return { data: (await listProviders(ctx, org)).map((row) => presentProvider(ctx, row)) };
  });

  app.post<{ Params: { org: string } }>('/api/v2/organizations/:org/vcs-providers', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    const org = await requireOrganization(ctx, principal, request.params.org);
    const input = parseBody(createBody, request.body).data.attributes;
    const { row, webhookSecret } = await createProvider(ctx, principal, org, input);
    return reply.status(201).send({ data: presentProvider(ctx, row, webhookSecret) });
  });

  app.get<{ Params: { id: string } }>('/api/v2/vcs-providers/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentProvider(ctx, await requireProvider(ctx, principal, request.params.id)) };
  });

  app.patch<{ Params: { id: string } }>('/api/v2/vcs-providers/:id', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const input = parseBody(updateBody, request.body).data.attributes;
    return { data: presentProvider(ctx, await updateProvider(ctx, principal, request.params.id, input)) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/vcs-providers/:id', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await deleteProvider(ctx, principal, request.params.id);
    return reply.status(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/v2/vcs-providers/:id/actions/rotate-webhook-secret', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const { 'overlap-seconds': overlap } = parseBody(rotateBody, request.body ?? {});
    const secret = await rotateWebhookSecret(ctx, principal, request.params.id, overlap * 1000);
    return { data: presentProvider(ctx, await requireProvider(ctx, principal, request.params.id), secret) };
  });

  // Tries the provider's credentials on a repository (git and the forge's API), through whoever reaches the provider.
  app.post<{ Params: { id: string } }>('/api/v2/vcs-providers/:id/actions/check', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const { repository } = parseBody(checkBody, request.body ?? {});
    const found = await checkRepository(ctx, principal, request.params.id, repository);
    const check: VcsRepositoryCheck = { type: 'vcs-repository-checks', attributes: { repository, 'default-branch': found.default_branch, private: found.private, branches: found.branches } };
    return { data: check };
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/api/v2/vcs-providers/:id/deliveries', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const { 'page[size]': limit } = parseBody(listQuery, request.query);
    return { data: (await listDeliveries(ctx, principal, request.params.id, limit)).map(presentDelivery) };
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/api/v2/workspaces/:id/vcs-triggers', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const { 'page[size]': limit } = parseBody(listQuery, request.query);
    return { data: (await listTriggers(ctx, workspace, limit)).map(presentTrigger) };
  });

  // Forges call this without an API token: the provider's webhook secret
  // (a signature over the exact bytes, or GitLab's token) is the credential.
  rawBodyRoutes(app, (scope) => {
    scope.post<{ Params: { id: string } }>('/api/v2/vcs-providers/:id/webhook', { bodyLimit: ctx.config.vcsWebhookMaxKb * 1024 }, async (request) => {
      const outcome = await acceptWebhook(ctx, request.params.id, { headers: request.headers, body: bodyBytes(request.body) });
      return { outcome };
    });
  });
}
