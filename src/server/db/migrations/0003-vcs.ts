// Version control: providers, workspaces' repository links, the webhook
// deliveries seen (for idempotency), the commits that may start runs, the
// work queue the server and VCS agents take provider work from, and the
// commit statuses reported for runs.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export const vcsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('agent_pools').addColumn('kind', 'text', (c) => c.notNull().defaultTo('runner')).execute();
    await db.schema.alterTable('configuration_versions').addColumn('source', 'text', (c) => c.notNull().defaultTo('tfe-api')).execute();
    await db.schema.alterTable('configuration_versions').addColumn('ingress', 'text').execute();

    await db.schema
      .createTable('vcs_providers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('http_url', 'text')
      .addColumn('api_url', 'text')
      .addColumn('credentials', 'text', (c) => c.notNull())
      .addColumn('webhook_secret', 'text', (c) => c.notNull())
      .addColumn('previous_webhook_secret', 'text')
      .addColumn('previous_webhook_secret_expires_at', 'bigint')
      .addColumn('pool_id', 'text', (c) => c.references('agent_pools.id'))
      .addColumn('poll_interval_ms', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('vcs_providers_organization_name', ['organization_id', 'name'])
      .execute();

    await db.schema
      .createTable('workspace_repositories')
      .addColumn('workspace_id', 'text', (c) => c.primaryKey().references('workspaces.id').onDelete('cascade'))
      .addColumn('provider_id', 'text', (c) => c.notNull().references('vcs_providers.id'))
      .addColumn('repository', 'text', (c) => c.notNull())
      .addColumn('branch', 'text', (c) => c.notNull())
      .addColumn('trigger_patterns', 'text', (c) => c.notNull())
      .addColumn('tags_regex', 'text')
      .addColumn('submodules', 'integer', (c) => c.notNull())
      .addColumn('speculative', 'integer', (c) => c.notNull())
      .addColumn('last_commit_sha', 'text')
      .addColumn('last_polled_at', 'bigint')
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('workspace_repositories_provider').on('workspace_repositories').columns(['provider_id', 'repository']).execute();

    await db.schema
      .createTable('vcs_deliveries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('provider_id', 'text', (c) => c.notNull().references('vcs_providers.id').onDelete('cascade'))
      .addColumn('delivery_id', 'text', (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      // A redelivered webhook (same delivery id) is recorded once and queues nothing again.
      .addUniqueConstraint('vcs_deliveries_provider_delivery', ['provider_id', 'delivery_id'])
      .execute();

    await db.schema
      .createTable('vcs_triggers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
      .addColumn('trigger_key', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('sha', 'text', (c) => c.notNull())
      .addColumn('compare_to', 'text')
      .addColumn('ref', 'text', (c) => c.notNull())
      .addColumn('pull_request', 'text')
      .addColumn('commit', 'text')
      .addColumn('changed_files', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('run_id', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      // One run per commit and cause, whichever of webhooks, polling and replicas sees it first.
      .addUniqueConstraint('vcs_triggers_workspace_key', ['workspace_id', 'trigger_key'])
      .execute();
    await db.schema.createIndex('vcs_triggers_status').on('vcs_triggers').columns(['status', 'sha']).execute();

    await db.schema
      .createTable('vcs_tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('provider_id', 'text', (c) => c.notNull().references('vcs_providers.id').onDelete('cascade'))
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('dedupe_key', 'text', (c) => c.unique())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('agent_id', 'text')
      .addColumn('locked_until', 'bigint')
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('result', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('vcs_tasks_due').on('vcs_tasks').columns(['status', 'next_attempt_at']).execute();

    await db.schema
      .createTable('vcs_commit_statuses')
      .addColumn('run_id', 'text', (c) => c.primaryKey().references('runs.id').onDelete('cascade'))
      .addColumn('provider_id', 'text', (c) => c.notNull().references('vcs_providers.id').onDelete('cascade'))
      .addColumn('repository', 'text', (c) => c.notNull())
      .addColumn('sha', 'text', (c) => c.notNull())
      .addColumn('context', 'text', (c) => c.notNull())
      .addColumn('reported', 'text')
      .addColumn('checked_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};
