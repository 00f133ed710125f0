// The loop behind serverless pools. On every turn (when a job is queued, and
// every OUTPOST_WEBHOOK_INTERVAL) it:
//   1. gives each waiting job that no connected agent can take a delivery
//      (one per wait of the job, within the pool's per-minute cap);
//   2. starts sending the deliveries that are due, retrying failed ones with
//      backoff while their job still waits; sends run beside the turns, so
//      a receiver that hangs delays no other pool and no other step;
//   3. fails jobs that no agent claimed within the pool's claim timeout of
//      their delivery, naming what the webhook last answered.
// Every write is conditional, so replicas sharing a database run it side by
// side: a delivery is created once, each attempt is taken by one replica,
// and a replica never overwrites what another recorded since it looked.
import { backoff } from '../../protocol/backoff.ts';
import { formatDuration } from '../../config/settings.ts';
import type { ServerContext } from '../context.ts';
import { newId } from '../ids.ts';
import { failUnclaimedJob } from '../jobs/service.ts';
import * as repo from './repo.ts';
import { safeUrl, sendDelivery } from './sender.ts';

/** Sends in flight at once, and per pool: one pool's dead receiver leaves room for the others. */
const parallelSends = 16;
const parallelSendsPerPool = 4;
const firstRetryMs = 5_000;
/** How long delivery records are kept, and how often old ones are removed. */
const retentionMs = 7 * 24 * 3_600_000;
const pruneEveryMs = 3_600_000;

interface DispatcherState {
  readonly stop: AbortSignal;
  readonly inFlight: Map<string, { poolId: string; done: Promise<void> }>;
  /** When each pool's "cap reached" was last logged. */
  readonly capLogged: Map<string, number>;
  lastPrune: number;
}

/** Starts the loop; the function it returns stops it, aborting sends in flight, and resolves once they and the turn have ended. */
export function startWebhookDispatcher(ctx: ServerContext): () => Promise<void> {
  const stop = new AbortController();
  const state: DispatcherState = { stop: stop.signal, inFlight: new Map(), capLogged: new Map(), lastPrune: 0 };
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        await dispatchOnce(ctx, state);
      } catch (error) {
        ctx.logger.error({ err: error }, 'webhook dispatch failed; trying again on the next turn');
      }
      await ctx.notifier.wait(['webhooks'], ctx.config.webhookInterval, stop.signal);
    }
  })();
  return async () => {
    stop.abort();
    await loop;
    await Promise.all([...state.inFlight.values()].map((entry) => entry.done));
  };
}

async function dispatchOnce(ctx: ServerContext, state: DispatcherState): Promise<void> {
  const webhooks = await repo.enabledWebhooks(ctx.db);
  for (const webhook of webhooks) {
    await scheduleDeliveries(ctx, state, webhook);
    await failUnclaimedJobs(ctx, webhook);
  }
  await startDueSends(ctx, state, new Map(webhooks.map((webhook) => [webhook.pool_id, webhook])));
  if (ctx.now() - state.lastPrune > pruneEveryMs) {
    state.lastPrune = ctx.now();
    const pruned = await repo.pruneDeliveries(ctx.db, ctx.now() - retentionMs);
    if (pruned > 0) ctx.logger.info({ count: pruned }, 'old webhook delivery records removed');
  }
}

async function scheduleDeliveries(ctx: ServerContext, state: DispatcherState, webhook: repo.WebhookRow): Promise<void> {
  const now = ctx.now();
  const budget = webhook.deliveries_per_minute - (await repo.countDeliveriesSince(ctx.db, webhook.pool_id, now - 60_000));
  // The pool's free agents take the oldest jobs; the rest need an agent started.
  const free = await repo.freeSlots(ctx.db, webhook.pool_id);
  const needing = await repo.jobsNeedingDelivery(ctx.db, webhook.pool_id, free, Math.max(budget, 1));
  if (needing.length > 0 && budget <= 0) {
    if (now - (state.capLogged.get(webhook.pool_id) ?? 0) >= 60_000) {
      state.capLogged.set(webhook.pool_id, now);
      ctx.logger.warn({ pool: webhook.pool_id, perMinute: webhook.deliveries_per_minute }, 'webhook delivery cap reached; waiting jobs get theirs in a later minute');
    }
    return;
  }
  for (const job of needing) {
    await repo.insertDelivery(
      ctx.db,
      repo.newDelivery(
        { id: newId('whd'), pool_id: webhook.pool_id, job_id: job.id, sequence: job.queued_count, event: 'job.queued', status: 'pending', attempts: 0, locked_until: null },
        now,
      ),
    );
  }
}

async function startDueSends(ctx: ServerContext, state: DispatcherState, webhooks: ReadonlyMap<string, repo.WebhookRow>): Promise<void> {
  const room = parallelSends - state.inFlight.size;
  if (room <= 0 || state.stop.aborted) return;
  const due = await repo.dueDeliveries(ctx.db, ctx.now(), parallelSends * 4);
  const perPool = new Map<string, number>();
  for (const { poolId } of state.inFlight.values()) perPool.set(poolId, (perPool.get(poolId) ?? 0) + 1);
  let started = 0;
  for (const delivery of due) {
    if (started >= room) break;
    if (state.inFlight.has(delivery.id) || (perPool.get(delivery.pool_id) ?? 0) >= parallelSendsPerPool) continue;
    perPool.set(delivery.pool_id, (perPool.get(delivery.pool_id) ?? 0) + 1);
    started += 1;
    const done = attempt(ctx, state.stop, webhooks.get(delivery.pool_id), delivery)
      .catch((error: unknown) => ctx.logger.error({ err: error, delivery: delivery.id }, 'a webhook delivery attempt could not be recorded; it is tried again'))
      .finally(() => {
        state.inFlight.delete(delivery.id);
        // A freed slot may let a waiting delivery go now rather than on the next tick.
        ctx.notifier.notify('webhooks');
      });
    state.inFlight.set(delivery.id, { poolId: delivery.pool_id, done });
  }
}

async function attempt(ctx: ServerContext, stop: AbortSignal, webhook: repo.WebhookRow | undefined, delivery: repo.DeliveryRow): Promise<void> {
  const now = ctx.now();
  const close = async (error: string) => {
    await repo.updateDeliveryIf(ctx.db, delivery, { status: delivery.event === 'ping' ? 'failed' : 'abandoned', error, locked_until: null, updated_at: now });
  };
  if (delivery.event === 'ping') return close('the server stopped while sending this test delivery');
  if (!webhook) return close('the pool\'s webhook was disabled or removed before this delivery was sent');
  if (!(await jobStillWaits(ctx, delivery))) return close('the job no longer waits: an agent took it, or it was canceled');
  if (!(await repo.lockDelivery(ctx.db, delivery, now, now + ctx.config.webhookTimeout * 2))) return;
  const sent = { ...delivery, status: 'sending' as const, attempts: delivery.attempts + 1 };
  let outcome;
  try {
    outcome = await sendDelivery(ctx, webhook, sent, stop);
  } catch (error) {
    // Nothing was sent (a secret that does not open, a query that failed): recorded, and tried again.
    outcome = { ok: false, record: { response_status: null, response_excerpt: null, latency_ms: 0, error: `the delivery could not be prepared: ${(error as Error).message}` } };
  }
  const after = ctx.now();
  const log = { pool: delivery.pool_id, delivery: delivery.id, job: delivery.job_id, attempt: sent.attempts, status: outcome.record.response_status, latencyMs: outcome.record.latency_ms };
  if (outcome.ok) {
    ctx.logger.info(log, 'webhook delivered');
    await repo.updateDeliveryIf(ctx.db, sent, { ...outcome.record, status: 'delivered', locked_until: null, updated_at: after });
    return;
  }
  const retry = !stop.aborted && (await jobStillWaits(ctx, delivery));
  const retryInMs = Math.round(backoff(sent.attempts - 1, { baseMs: firstRetryMs, maxMs: ctx.config.webhookRetryMaxInterval }));
  ctx.logger.warn({ ...log, url: safeUrl(webhook.url), error: outcome.record.error, retryInMs: retry ? retryInMs : undefined }, retry ? 'webhook delivery failed; retrying' : 'webhook delivery failed');
  // Stopping: the attempt goes back as it was, for the next server to make.
  const status = stop.aborted ? 'pending' : retry ? 'pending' : 'abandoned';
  await repo.updateDeliveryIf(ctx.db, sent, { ...outcome.record, status, next_attempt_at: retry ? after + retryInMs : after, locked_until: null, updated_at: after });
}

async function jobStillWaits(ctx: ServerContext, delivery: repo.DeliveryRow): Promise<boolean> {
  return delivery.job_id !== null && (await repo.isJobQueued(ctx.db, delivery.job_id));
}

async function failUnclaimedJobs(ctx: ServerContext, webhook: repo.WebhookRow): Promise<void> {
  for (const delivery of await repo.jobsUnclaimedSince(ctx.db, webhook.pool_id, ctx.now() - webhook.claim_timeout_ms)) {
    if (await failUnclaimedJob(ctx, delivery.job_id!, unclaimedMessage(webhook, delivery))) {
      ctx.logger.warn({ pool: webhook.pool_id, job: delivery.job_id, delivery: delivery.id }, 'no agent claimed a job of a serverless pool in time; it failed');
    }
  }
}

/** Why no agent came, in the words an operator needs: what the webhook last said. */
export function unclaimedMessage(webhook: repo.WebhookRow, last: repo.DeliveryRow): string {
  const waited = `no agent claimed the job within ${formatDuration(webhook.claim_timeout_ms)} of its webhook delivery (the pool's claim timeout)`;
  const url = safeUrl(webhook.url);
  const answer =
    last.response_status !== null
      ? `HTTP ${last.response_status}${last.response_excerpt ? ` ${JSON.stringify(last.response_excerpt.slice(0, 200))}` : ''}`
      : (last.error ?? 'no attempt was made yet');
  if (last.status === 'delivered') {
    return `${waited}. The webhook ${url} accepted delivery ${last.id} (${answer}) but no agent came for the job: check the receiver's logs; the agent it starts may fail to start, to read its token, or to reach this server`;
  }
  return `${waited}. The webhook ${url} did not accept delivery ${last.id} after ${last.attempts} attempt${last.attempts === 1 ? '' : 's'}; the last answer: ${answer}`;
}
