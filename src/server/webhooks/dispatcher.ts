// The loop behind serverless pools. On every turn (when a job is queued, and
// every OUTPOST_WEBHOOK_INTERVAL) it:
//   1. gives each waiting job that no connected agent can take a delivery
//      (one per wait of a job, within the pool's per-minute cap);
//   2. sends the deliveries that are due, retrying failed ones with backoff
//      while their job still waits;
//   3. fails jobs that no agent claimed within the pool's claim timeout,
//      naming what the webhook last answered.
// Every step is a conditional write, so replicas sharing a database can run
// it side by side: a delivery is created once and each attempt sent once.
import { backoff } from '../../protocol/backoff.ts';
import { formatDuration } from '../../config/settings.ts';
import type { ServerContext } from '../context.ts';
import { newId } from '../ids.ts';
import { failUnclaimedJob } from '../jobs/service.ts';
import * as repo from './repo.ts';
import { safeUrl, sendDelivery } from './sender.ts';

/** How many deliveries are in flight at once, across pools: a receiver that hangs must not hold up the others. */
const parallelSends = 8;
const firstRetryMs = 5_000;

/** Starts the loop; the function it returns stops it and resolves once a turn in progress has ended. */
export function startWebhookDispatcher(ctx: ServerContext): () => Promise<void> {
  const stop = new AbortController();
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        await dispatchOnce(ctx);
      } catch (error) {
        ctx.logger.error({ err: error }, 'webhook dispatch failed; trying again on the next turn');
      }
      await ctx.notifier.wait(['webhooks'], ctx.config.webhookInterval, stop.signal);
    }
  })();
  return async () => {
    stop.abort();
    await loop;
  };
}

export async function dispatchOnce(ctx: ServerContext): Promise<void> {
  const webhooks = await repo.enabledWebhooks(ctx.db);
  for (const webhook of webhooks) {
    await scheduleDeliveries(ctx, webhook);
    await failUnclaimedJobs(ctx, webhook);
  }
  await sendDue(ctx, new Map(webhooks.map((webhook) => [webhook.pool_id, webhook])));
}

async function scheduleDeliveries(ctx: ServerContext, webhook: repo.WebhookRow): Promise<void> {
  const now = ctx.now();
  // The pool's free agents take the oldest jobs; the rest need an agent started.
  const free = await repo.freeSlots(ctx.db, webhook.pool_id);
  const waiting = (await repo.waitingJobs(ctx.db, webhook.pool_id, free + webhook.deliveries_per_minute)).slice(free);
  let budget = webhook.deliveries_per_minute - (await repo.countDeliveriesSince(ctx.db, webhook.pool_id, now - 60_000));
  for (const job of waiting) {
    // A job waits again after an agent took it and let go (its agent died before finishing): a new delivery.
    const needsDelivery = job.sequence === null || (job.leased_at !== null && job.delivery_created_at !== null && job.leased_at > job.delivery_created_at);
    if (!needsDelivery) continue;
    if (budget <= 0) {
      ctx.logger.warn({ pool: webhook.pool_id, perMinute: webhook.deliveries_per_minute }, 'webhook delivery cap reached; waiting jobs get theirs in the next minute');
      return;
    }
    const created = await repo.insertDelivery(
      ctx.db,
      repo.newDelivery(
        { id: newId('whd'), pool_id: webhook.pool_id, job_id: job.id, sequence: (job.sequence ?? 0) + 1, event: 'job.queued', status: 'pending', attempts: 0, locked_until: null },
        now,
      ),
    );
    if (created) budget -= 1;
  }
}

async function sendDue(ctx: ServerContext, webhooks: ReadonlyMap<string, repo.WebhookRow>): Promise<void> {
  const due = await repo.dueDeliveries(ctx.db, ctx.now(), 100);
  const queue = [...due];
  const worker = async () => {
    for (let delivery = queue.shift(); delivery; delivery = queue.shift()) {
      try {
        await attempt(ctx, webhooks.get(delivery.pool_id), delivery);
      } catch (error) {
        ctx.logger.error({ err: error, delivery: delivery.id }, 'a webhook delivery attempt could not be made; it is tried again');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelSends, queue.length) }, worker));
}

async function attempt(ctx: ServerContext, webhook: repo.WebhookRow | undefined, delivery: repo.DeliveryRow): Promise<void> {
  const now = ctx.now();
  const close = (error: string) => repo.updateDelivery(ctx.db, delivery.id, { status: delivery.event === 'ping' ? 'failed' : 'abandoned', error, locked_until: null, updated_at: now });
  if (delivery.event === 'ping') return close('the server stopped while sending this test delivery');
  if (!webhook) return close('the pool\'s webhook was disabled or removed before this delivery was sent');
  if (!(await jobStillWaits(ctx, delivery))) return close('the job no longer waits: an agent took it, or it was canceled');
  if (!(await repo.lockDelivery(ctx.db, delivery, now, now + ctx.config.webhookTimeout * 2))) return;
  const sent = { ...delivery, attempts: delivery.attempts + 1 };
  const outcome = await sendDelivery(ctx, webhook, sent);
  const after = ctx.now();
  const log = { pool: delivery.pool_id, delivery: delivery.id, job: delivery.job_id, attempt: sent.attempts, status: outcome.record.response_status, latencyMs: outcome.record.latency_ms };
  if (outcome.ok) {
    ctx.logger.info(log, 'webhook delivered');
    return repo.updateDelivery(ctx.db, delivery.id, { ...outcome.record, status: 'delivered', locked_until: null, updated_at: after });
  }
  const retry = await jobStillWaits(ctx, delivery);
  const retryInMs = backoff(sent.attempts - 1, { baseMs: firstRetryMs, maxMs: ctx.config.webhookRetryMaxInterval });
  ctx.logger.warn({ ...log, url: safeUrl(webhook.url), error: outcome.record.error, retryInMs: retry ? Math.round(retryInMs) : undefined }, retry ? 'webhook delivery failed; retrying' : 'webhook delivery failed');
  await repo.updateDelivery(ctx.db, delivery.id, {
    ...outcome.record,
    status: retry ? 'pending' : 'abandoned',
    next_attempt_at: retry ? after + Math.round(retryInMs) : after,
    locked_until: null,
    updated_at: after,
  });
}

async function jobStillWaits(ctx: ServerContext, delivery: repo.DeliveryRow): Promise<boolean> {
  return delivery.job_id !== null && (await repo.isJobQueued(ctx.db, delivery.job_id));
}

async function failUnclaimedJobs(ctx: ServerContext, webhook: repo.WebhookRow): Promise<void> {
  const stale = await repo.jobsWaitingSince(ctx.db, webhook.pool_id, ctx.now() - webhook.claim_timeout_ms);
  for (const job of stale) {
    const last = await repo.latestDeliveryOfJob(ctx.db, job.id);
    const message = unclaimedMessage(webhook, last);
    if (await failUnclaimedJob(ctx, job.id, message)) {
      ctx.logger.warn({ pool: webhook.pool_id, job: job.id, delivery: last?.id }, 'no agent claimed a job of a serverless pool in time; it failed');
    }
  }
}

/** Why no agent came, in the words an operator needs: what the webhook last said. */
export function unclaimedMessage(webhook: repo.WebhookRow, last: repo.DeliveryRow | undefined): string {
  const waited = `no agent claimed the job within ${formatDuration(webhook.claim_timeout_ms)} (the pool's claim timeout)`;
  const url = safeUrl(webhook.url);
  if (!last) return `${waited}; no webhook delivery was made for it: the pool's cap of ${webhook.deliveries_per_minute} deliveries a minute was reached`;
  const answer =
    last.response_status !== null
      ? `HTTP ${last.response_status}${last.response_excerpt ? ` ${JSON.stringify(last.response_excerpt.slice(0, 200))}` : ''}`
      : (last.error ?? 'no attempt was made yet');
  if (last.status === 'delivered') {
    return `${waited}. The webhook ${url} accepted delivery ${last.id} (${answer}) but no agent came for the job: check the receiver's logs; the agent it starts may fail to start, to read its token, or to reach this server`;
  }
  return `${waited}. The webhook ${url} did not accept delivery ${last.id} after ${last.attempts} attempt${last.attempts === 1 ? '' : 's'}; the last answer: ${answer}`;
}
