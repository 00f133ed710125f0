// A serverless pool's webhook: who may set it, the rules of its headers and
// secrets, and the deliveries the API lists. Sending lives in sender.ts, the
// loop that decides what to send in dispatcher.ts.
import type { PoolWebhookInput } from '../../protocol/api-inputs.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { webhookHeaders } from '../../protocol/webhook-signature.ts';
import type { ServerContext } from '../context.ts';
import { newId, newWebhookSecret } from '../ids.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { requirePool } from '../pools/service.ts';
import * as repo from './repo.ts';
import { refusedAddress, sendDelivery } from './sender.ts';

const defaults = { deliveriesPerMinute: 60, claimTimeoutMs: 10 * 60_000 };

/** Headers the control plane sets itself: a custom header may not replace them. */
const reservedHeaders = new Set([...Object.values(webhookHeaders), 'content-type', 'content-length', 'host', 'user-agent', 'transfer-encoding', 'connection']);

interface StoredHeader {
  name: string;
  /** Sealed. */
  value: string;
}

export async function requireWebhook(ctx: ServerContext, principal: ApiPrincipal, poolId: string): Promise<repo.WebhookRow> {
  const pool = await requirePool(ctx, principal, poolId);
  const webhook = await repo.findWebhook(ctx.db, pool.id);
  if (!webhook) throw new OutpostError('not_found', `agent pool ${pool.name} has no webhook; set one with \`outpost pool webhook set\``);
  return webhook;
}

/**
 * Creates or changes a pool's webhook. A new webhook gets a signing secret,
 * returned here once; the receiver must be given it.
 */
export async function setWebhook(ctx: ServerContext, principal: ApiPrincipal, poolId: string, input: PoolWebhookInput): Promise<{ row: repo.WebhookRow; secret?: string }> {
  const pool = await requirePool(ctx, principal, poolId);
  const existing = await repo.findWebhook(ctx.db, pool.id);
  const url = input.url ?? existing?.url;
  if (!url) throw new OutpostError('validation_failed', 'a new webhook needs a url');
  const refusal = refusedAddress(url);
  if (refusal) throw new OutpostError('validation_failed', refusal);
  const now = ctx.now();
  const secret = existing ? undefined : newWebhookSecret();
  const row = {
    pool_id: pool.id,
    url,
    headers: input.headers ? JSON.stringify(sealHeaders(ctx, input.headers)) : (existing?.headers ?? '[]'),
    enabled: input.enabled === undefined ? (existing?.enabled ?? 1) : input.enabled ? (1 as const) : (0 as const),
    signing_secret: existing?.signing_secret ?? ctx.sealer.seal(secret!),
    previous_secret: existing?.previous_secret ?? null,
    previous_secret_expires_at: existing?.previous_secret_expires_at ?? null,
    deliveries_per_minute: input['deliveries-per-minute'] ?? existing?.deliveries_per_minute ?? defaults.deliveriesPerMinute,
    claim_timeout_ms: input['claim-timeout-seconds'] !== undefined ? input['claim-timeout-seconds'] * 1000 : (existing?.claim_timeout_ms ?? defaults.claimTimeoutMs),
    created_at: existing?.created_at ?? now,
    updated_at: now,
  };
  await repo.upsertWebhook(ctx.db, row);
  ctx.logger.info({ pool: pool.id, enabled: row.enabled === 1 }, existing ? 'pool webhook changed' : 'pool webhook set');
  ctx.notifier.notify('webhooks');
  return { row: (await repo.findWebhook(ctx.db, pool.id))!, ...(secret ? { secret } : {}) };
}

function sealHeaders(ctx: ServerContext, headers: Record<string, string>): StoredHeader[] {
  return Object.entries(headers).map(([name, value]) => {
    if (reservedHeaders.has(name.toLowerCase())) {
      throw new OutpostError('validation_failed', `header ${name} is set by Outpost itself on every delivery and cannot be replaced`);
    }
    return { name, value: ctx.sealer.seal(value) };
  });
}

/** The custom headers' names: their values are never shown again. */
export function headerNames(row: repo.WebhookRow): string[] {
  return (JSON.parse(row.headers) as StoredHeader[]).map((header) => header.name);
}

export async function deleteWebhook(ctx: ServerContext, principal: ApiPrincipal, poolId: string): Promise<void> {
  const webhook = await requireWebhook(ctx, principal, poolId);
  await repo.deleteWebhook(ctx.db, webhook.pool_id);
  ctx.logger.info({ pool: webhook.pool_id }, 'pool webhook removed');
}

/**
 * A new signing secret, returned once. Deliveries carry a signature with each
 * secret until the overlap ends, so receivers can switch at any moment within it.
 */
export async function rotateSigningSecret(ctx: ServerContext, principal: ApiPrincipal, poolId: string, overlapSeconds: number): Promise<{ row: repo.WebhookRow; secret: string }> {
  const webhook = await requireWebhook(ctx, principal, poolId);
  const secret = newWebhookSecret();
  const now = ctx.now();
  await repo.upsertWebhook(ctx.db, {
    ...webhook,
    signing_secret: ctx.sealer.seal(secret),
    previous_secret: overlapSeconds > 0 ? webhook.signing_secret : null,
    previous_secret_expires_at: overlapSeconds > 0 ? now + overlapSeconds * 1000 : null,
    updated_at: now,
  });
  ctx.logger.info({ pool: webhook.pool_id, overlapSeconds }, 'pool webhook signing secret rotated');
  return { row: (await repo.findWebhook(ctx.db, webhook.pool_id))!, secret };
}

/** Sends a `ping` now, once, and answers with its record: the way to check a receiver before a run depends on it. */
export async function sendTestDelivery(ctx: ServerContext, principal: ApiPrincipal, poolId: string): Promise<repo.DeliveryRow> {
  const webhook = await requireWebhook(ctx, principal, poolId);
  const now = ctx.now();
  const row = repo.newDelivery(
    { id: newId('whd'), pool_id: webhook.pool_id, job_id: null, sequence: 1, event: 'ping', status: 'sending', attempts: 1, locked_until: now + ctx.config.webhookTimeout * 2 },
    now,
  );
  await repo.insertDelivery(ctx.db, row);
  const outcome = await sendDelivery(ctx, webhook, row);
  await repo.updateDelivery(ctx.db, row.id, { ...outcome.record, status: outcome.ok ? 'delivered' : 'failed', locked_until: null, updated_at: ctx.now() });
  return (await repo.findDelivery(ctx.db, row.id))!;
}

export async function listDeliveries(ctx: ServerContext, principal: ApiPrincipal, poolId: string, limit: number): Promise<repo.DeliveryRow[]> {
  const pool = await requirePool(ctx, principal, poolId);
  return repo.listDeliveries(ctx.db, pool.id, limit);
}
