// Runs work in one database transaction and publishes wake-ups only after it
// committed, so a woken agent or log follower always finds what woke it.
import type { Kysely } from 'kysely';
import type { ServerContext } from './context.ts';
import type { Database } from './db/schema.ts';
import type { Topic } from './notifier.ts';

export interface Effects {
  notify(topic: Topic): void;
}

export async function inTransaction<T>(ctx: ServerContext, work: (trx: Kysely<Database>, effects: Effects) => Promise<T>): Promise<T> {
  const topics = new Set<Topic>();
  const result = await ctx.db.transaction().execute((trx) => work(trx, { notify: (topic) => topics.add(topic) }));
  for (const topic of topics) ctx.notifier.notify(topic);
  return result;
}
