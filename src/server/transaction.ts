// Runs work in one database transaction and publishes wake-ups only after it
// committed, so a woken agent or log follower always finds what woke it.
import type { Kysely } from 'kysely';
import type { ServerContext } from './context.ts';
import type { Database } from './db/schema.ts';
import { poolWakeLimit, type Topic } from './notifier.ts';

export interface Effects {
  notify(topic: Topic): void;
}

export async function inTransaction<T>(ctx: ServerContext, work: (trx: Kysely<Database>, effects: Effects) => Promise<T>): Promise<T> {
  const topics = new Set<Topic>();
  const result = await ctx.db.transaction().execute((trx) => work(trx, { notify: (topic) => topics.add(topic) }));
  // New work in a pool wakes a few of its agents (the notifier's wave), anything else every waiter.
  for (const topic of topics) ctx.notifier.notify(topic, topic.startsWith('pool:') ? poolWakeLimit : undefined);
  return result;
}
