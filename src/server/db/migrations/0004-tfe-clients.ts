// What TFE's own clients (the `tofu` CLI's cloud backend, go-tfe) need
// beyond the API's first version: speculative and auto-queuing configuration
// versions, runs that say where they came from and carry the engine's plan
// options, workspaces' execution mode, description and tags, and state locks a user (not
// only a job) holds.
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export const tfeClientsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('configuration_versions').addColumn('speculative', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('configuration_versions').addColumn('auto_queue_runs', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('runs').addColumn('source', 'text', (c) => c.notNull().defaultTo('tfe-api')).execute();
    await db.schema.alterTable('runs').addColumn('plan_options', 'text').execute();
    await db.schema.alterTable('workspaces').addColumn('execution_mode', 'text', (c) => c.notNull().defaultTo('agent')).execute();
    await db.schema.alterTable('workspaces').addColumn('description', 'text', (c) => c.notNull().defaultTo('')).execute();
    await db.schema.alterTable('state_locks').addColumn('token_id', 'text').execute();

    await db.schema
      .createTable('workspace_tags')
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
      .addColumn('tag', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('workspace_tags_pk', ['workspace_id', 'tag'])
      .execute();
    await db.schema.createIndex('workspace_tags_tag').on('workspace_tags').columns(['tag']).execute();
  },
};
