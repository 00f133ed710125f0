// A serverless pool's webhook and its deliveries (Outpost's own resources;
// TFE has no equivalent).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { poolWebhookInput, requestOf, webhookSecretRotationInput } from '../../protocol/api-inputs.ts';
import type { PoolWebhook, WebhookDelivery } from '../../protocol/api-resources.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { iso, parseBody, relation } from '../http/json-api.ts';
import type { DeliveryRow, WebhookRow } from './repo.ts';
import { deleteWebhook, headerNames, listDeliveries, requireWebhook, rotateSigningSecret, sendTestDelivery, setWebhook } from './service.ts';

const setBody = requestOf('pool-webhooks', poolWebhookInput);
const rotateBody = z.object({ data: z.object({ type: z.literal('pool-webhooks').optional(), attributes: webhookSecretRotationInput }) });
const listQuery = z.object({ 'page[size]': z.coerce.number().int().min(1).max(100).default(20) });

function presentWebhook(row: WebhookRow, secret?: string): PoolWebhook {
  return {
    id: row.pool_id,
    type: 'pool-webhooks',
    attributes: {
      url: row.url,
      headers: headerNames(row),
      enabled: row.enabled === 1,
      'deliveries-per-minute': row.deliveries_per_minute,
      'claim-timeout-seconds': Math.round(row.claim_timeout_ms / 1000),
      ...(secret ? { 'signing-secret': secret } : {}),
      'previous-secret-expires-at': iso(row.previous_secret ? row.previous_secret_expires_at : null),
      'created-at': iso(row.created_at),
      'updated-at': iso(row.updated_at),
    },
    relationships: { 'agent-pool': relation('agent-pools', row.pool_id) },
  };
}

function presentDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    type: 'webhook-deliveries',
    attributes: {
      event: row.event,
      status: row.status,
      attempts: row.attempts,
      'response-status': row.response_status,
      'response-excerpt': row.response_excerpt,
      'latency-ms': row.latency_ms,
      error: row.error,
      'next-attempt-at': iso(row.status === 'pending' ? row.next_attempt_at : null),
      'created-at': iso(row.created_at),
      'updated-at': iso(row.updated_at),
    },
    relationships: { 'agent-pool': relation('agent-pools', row.pool_id), job: relation('jobs', row.job_id) },
  };
}

export function webhookRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id/webhook', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentWebhook(await requireWebhook(ctx, principal, request.params.id)) };
  });

  app.put<{ Params: { id: string } }>('/api/v2/agent-pools/:id/webhook', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const input = parseBody(setBody, request.body).data.attributes;
    const { row, secret } = await setWebhook(ctx, principal, request.params.id, input);
    return { data: presentWebhook(row, secret) };
  });

  app.delete<{ Params: { id: string } }>('/api/v2/agent-pools/:id/webhook', async (request, reply) => {
    const principal = await authenticateApi(ctx, request);
    await deleteWebhook(ctx, principal, request.params.id);
    return reply.status(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/v2/agent-pools/:id/webhook/actions/rotate-secret', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const { 'overlap-seconds': overlap } = parseBody(rotateBody, request.body ?? { data: { attributes: {} } }).data.attributes;
    const { row, secret } = await rotateSigningSecret(ctx, principal, request.params.id, overlap);
    return { data: presentWebhook(row, secret) };
  });

  app.post<{ Params: { id: string } }>('/api/v2/agent-pools/:id/webhook/actions/test', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentDelivery(await sendTestDelivery(ctx, principal, request.params.id)) };
  });

  app.get<{ Params: { id: string } }>('/api/v2/agent-pools/:id/webhook-deliveries', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const { 'page[size]': size } = parseBody(listQuery, request.query);
    return { data: (await listDeliveries(ctx, principal, request.params.id, size)).map(presentDelivery) };
  });
}
