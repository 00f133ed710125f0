// Wake-ups across several server replicas sharing one PostgreSQL database:
// each notification is published with NOTIFY and every replica LISTENs, so an
// agent long-polling replica A wakes when a run is queued on replica B.
// Waiters still re-read the tables, so a notification lost while the LISTEN
// connection reconnects only delays work until the poll's timeout.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Database } from './db/schema.ts';
import { LocalNotifier, type Notifier, type Topic } from './notifier.ts';

const channel = 'outpost_wakeup';

export class PostgresNotifier implements Notifier {
  readonly #local = new LocalNotifier();
  readonly #instance = randomUUID();
  readonly #db: Kysely<Database>;
  readonly #url: string;
  readonly #logger: Logger;
  #client: pg.Client | undefined;
  #closed = false;

  private constructor(db: Kysely<Database>, url: string, logger: Logger) {
    this.#db = db;
    this.#url = url;
    this.#logger = logger;
  }

  static async start(db: Kysely<Database>, url: string, logger: Logger): Promise<PostgresNotifier> {
    const notifier = new PostgresNotifier(db, url, logger);
    await notifier.#listen();
    return notifier;
  }

  notify(topic: Topic, limit?: number): void {
    // This replica's waiters are woken directly; the others through NOTIFY
    // (each replica wakes up to `limit` of its own).
    this.#local.notify(topic, limit);
    const payload = `${this.#instance} ${topic}${limit === undefined ? '' : ` ${limit}`}`;
    sql`select pg_notify(${channel}, ${payload})`.execute(this.#db).catch((error: unknown) => {
      this.#logger.warn({ err: (error as Error).message, topic }, 'could not publish a wake-up to other replicas');
    });
  }

  wait(topics: readonly Topic[], timeoutMs: number, signal?: AbortSignal): Promise<'notified' | 'timeout' | 'aborted'> {
    return this.#local.wait(topics, timeoutMs, signal);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#client?.end().catch(() => undefined);
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url });
    client.on('notification', (message) => {
      const [sender, topic, limit] = (message.payload ?? '').split(' ', 3);
      if (sender !== this.#instance && topic) this.#local.notify(topic as Topic, limit ? Number(limit) : undefined);
    });
    client.on('error', (error) => this.#logger.warn({ err: error.message }, 'wake-up listener connection failed'));
    client.on('end', () => {
      if (this.#closed) return;
      this.#client = undefined;
      this.#logger.warn('wake-up listener disconnected; reconnecting');
      setTimeout(() => void this.#reconnect(1_000), 1_000).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${channel}`);
    this.#client = client;
  }

  async #reconnect(delayMs: number): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#listen();
      this.#logger.info('wake-up listener reconnected');
    } catch (error) {
      const next = Math.min(30_000, delayMs * 2);
      this.#logger.warn({ err: (error as Error).message, retryInMs: next }, 'wake-up listener reconnect failed');
      setTimeout(() => void this.#reconnect(next), next).unref();
    }
  }
}
