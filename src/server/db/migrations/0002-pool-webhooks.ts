// Serverless pools: a pool's webhook, the record of every delivery, and
// how many times each job was queued.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export const poolWebhooksMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // A job's waits, so that each gets one delivery (and a claim handed back
    // to a living agent does not start another).
    await db.schema.alterTable('jobs').addColumn('queued_count', 'integer', (c) => c.notNull().defaultTo(1)).execute();

    await db.schema
      .createTable('pool_webhooks')
      .addColumn('pool_id', 'text', (c) => c.primaryKey().references('agent_pools.id').onDelete('cascade'))
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('headers', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('signing_secret', 'text', (c) => c.notNull())
      .addColumn('previous_secret', 'text')
      .addColumn('previous_secret_expires_at', 'bigint')
      .addColumn('deliveries_per_minute', 'integer', (c) => c.notNull())
      .addColumn('claim_timeout_ms', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('webhook_deliveries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('pool_id', 'text', (c) => c.notNull().references('agent_pools.id').onDelete('cascade'))
      .addColumn('job_id', 'text', (c) => c.references('jobs.id').onDelete('cascade'))
      .addColumn('sequence', 'integer', (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('locked_until', 'bigint')
      .addColumn('response_status', 'integer')
      .addColumn('response_excerpt', 'text')
      .addColumn('latency_ms', 'integer')
      .addColumn('error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      // One delivery per wait of a job, also with several replicas dispatching.
      .addUniqueConstraint('webhook_deliveries_job_sequence', ['job_id', 'sequence'])
      .execute();
    await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
    await db.schema.createIndex('webhook_deliveries_pool').on('webhook_deliveries').columns(['pool_id', 'created_at']).execute();
  },
};
