// Runs work in one database transaction and publishes wake-ups only after it
// committed, so a woken agent or log follower always finds what woke it.
import type { Kysely } from 'kysely';
import type { ServerContext } from './context.ts';
import type { Database } from './db/schema.ts';
import { poolWakeLimit, type Topic } from './notifier.ts';

export interface Effects {
  /** Wakes the topic's waiters once committed; `afterMs` holds the wake-up back that long (a head start for another topic). */
  notify(topic: Topic, options?: { afterMs?: number }): void;
}

export async function inTransaction<T>(ctx: ServerContext, work: (trx: Kysely<Database>, effects: Effects) => Promise<T>): Promise<T> {
  // Each topic once, at its earliest requested time.
  const topics = new Map<Topic, number>();
  const notify = (topic: Topic, options: { afterMs?: number } = {}): void => {
    const afterMs = options.afterMs ?? 0;
    topics.set(topic, Math.min(topics.get(topic) ?? afterMs, afterMs));
  };
  const result = await ctx.db.transaction().execute((trx) => work(trx, { notify }));
  for (const [topic, afterMs] of topics) {
    // New work in a pool wakes a few of its agents (the notifier's wave), anything else every waiter.
    const wake = () => ctx.notifier.notify(topic, topic.startsWith('pool:') ? poolWakeLimit : undefined);
    if (afterMs === 0) wake();
    else setTimeout(wake, afterMs).unref();
  }
  return result;
}
