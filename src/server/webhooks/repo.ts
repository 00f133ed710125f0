// SQL for pool webhooks and their deliveries.
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database, PoolWebhooksTable, WebhookDeliveriesTable } from '../db/schema.ts';

export type WebhookRow = Selectable<PoolWebhooksTable>;
export type DeliveryRow = Selectable<WebhookDeliveriesTable>;

export async function findWebhook(db: Kysely<Database>, poolId: string): Promise<WebhookRow | undefined> {
  return db.selectFrom('pool_webhooks').selectAll().where('pool_id', '=', poolId).executeTakeFirst();
}

export async function upsertWebhook(db: Kysely<Database>, row: PoolWebhooksTable): Promise<void> {
  await db
    .insertInto('pool_webhooks')
    .values(row)
    .onConflict((oc) => oc.column('pool_id').doUpdateSet({ ...row, created_at: sql.ref('pool_webhooks.created_at') }))
    .execute();
}

export async function deleteWebhook(db: Kysely<Database>, poolId: string): Promise<void> {
  await db.deleteFrom('pool_webhooks').where('pool_id', '=', poolId).execute();
}

export async function enabledWebhooks(db: Kysely<Database>): Promise<WebhookRow[]> {
  return db.selectFrom('pool_webhooks').selectAll().where('enabled', '=', 1).execute();
}

/**
 * How many more jobs the pool's connected agents can take now: the slots of
 * agents that poll for any job, less the jobs they hold. Single-run agents
 * do not count: each was started for one job of its own.
 */
export async function freeSlots(db: Kysely<Database>, poolId: string): Promise<number> {
  const row = await db
    .selectFrom('agents')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<number>('agents.concurrency'), sql<number>`0`).as('slots'),
      eb
        .selectFrom('jobs')
        .innerJoin('agents as holder', 'holder.id', 'jobs.agent_id')
        .select((inner) => inner.fn.countAll<number>().as('n'))
        .where('holder.pool_id', '=', poolId)
        .where('holder.single', '=', 0)
        .where('holder.status', 'in', ['idle', 'busy'])
        .where('holder.deregistered_at', 'is', null)
        .where('jobs.status', 'in', ['leased', 'running'])
        .as('busy'),
    ])
    .where('agents.pool_id', '=', poolId)
    .where('agents.single', '=', 0)
    // A draining or errored agent takes no new job; an offline one is gone.
    .where('agents.status', 'in', ['idle', 'busy'])
    .where('agents.deregistered_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Math.max(0, Number(row.slots ?? 0) - Number(row.busy ?? 0));
}

/**
 * The pool's queued jobs that have no delivery for their current wait,
 * oldest first, leaving out the `skipOldest` oldest queued jobs (the pool's
 * free agents take those).
 */
export async function jobsNeedingDelivery(db: Kysely<Database>, poolId: string, skipOldest: number, limit: number): Promise<{ id: string; queued_count: number }[]> {
  if (limit <= 0) return [];
  return db
    .selectFrom('jobs')
    .select(['jobs.id', 'jobs.queued_count'])
    .where('jobs.pool_id', '=', poolId)
    .where('jobs.status', '=', 'queued')
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('webhook_deliveries as d').select('d.id').whereRef('d.job_id', '=', 'jobs.id').whereRef('d.sequence', '=', 'jobs.queued_count'))),
    )
    .where('jobs.id', 'not in', (eb) =>
      eb.selectFrom('jobs as oldest').select('oldest.id').where('oldest.pool_id', '=', poolId).where('oldest.status', '=', 'queued').orderBy('oldest.created_at').orderBy('oldest.id').limit(Math.max(skipOldest, 0)),
    )
    .orderBy('jobs.created_at')
    .orderBy('jobs.id')
    .limit(limit)
    .execute();
}

export async function countDeliveriesSince(db: Kysely<Database>, poolId: string, since: number): Promise<number> {
  const row = await db
    .selectFrom('webhook_deliveries')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('pool_id', '=', poolId)
    .where('event', '=', 'job.queued')
    .where('created_at', '>=', since)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A delivery not yet attempted, with the given fields. */
export function newDelivery(
  fields: Pick<WebhookDeliveriesTable, 'id' | 'pool_id' | 'job_id' | 'sequence' | 'event' | 'status' | 'attempts' | 'locked_until'>,
  now: number,
): WebhookDeliveriesTable {
  return { ...fields, next_attempt_at: now, response_status: null, response_excerpt: null, latency_ms: null, error: null, created_at: now, updated_at: now };
}

/** Inserts a delivery; false when another replica created this job's delivery first. */
export async function insertDelivery(db: Kysely<Database>, row: WebhookDeliveriesTable): Promise<boolean> {
  const result = await db.insertInto('webhook_deliveries').values(row).onConflict((oc) => oc.columns(['job_id', 'sequence']).doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findDelivery(db: Kysely<Database>, id: string): Promise<DeliveryRow | undefined> {
  return db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listDeliveries(db: Kysely<Database>, poolId: string, limit: number): Promise<DeliveryRow[]> {
  return db.selectFrom('webhook_deliveries').selectAll().where('pool_id', '=', poolId).orderBy('created_at', 'desc').orderBy('id').limit(limit).execute();
}

/** Deliveries whose next attempt is due, and attempts a stopped replica left half-done. */
export async function dueDeliveries(db: Kysely<Database>, now: number, limit: number): Promise<DeliveryRow[]> {
  return db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where((eb) => eb.or([eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', now)]), eb.and([eb('status', '=', 'sending'), eb('locked_until', '<', now)])]))
    .orderBy('next_attempt_at')
    .limit(limit)
    .execute();
}

/** Takes an attempt for this replica; false when another took it first. */
export async function lockDelivery(db: Kysely<Database>, delivery: DeliveryRow, now: number, until: number): Promise<boolean> {
  const result = await db
    .updateTable('webhook_deliveries')
    .set({ status: 'sending', locked_until: until, attempts: delivery.attempts + 1, updated_at: now })
    .where('id', '=', delivery.id)
    .where('attempts', '=', delivery.attempts)
    .where('status', '=', delivery.status)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function updateDelivery(db: Kysely<Database>, id: string, changes: Updateable<WebhookDeliveriesTable>): Promise<void> {
  await db.updateTable('webhook_deliveries').set(changes).where('id', '=', id).execute();
}

/** Updates a delivery only while it is as this replica last saw it (status and attempts): another replica's newer write stands. */
export async function updateDeliveryIf(
  db: Kysely<Database>,
  seen: Pick<DeliveryRow, 'id' | 'status' | 'attempts'>,
  changes: Updateable<WebhookDeliveriesTable>,
): Promise<boolean> {
  const result = await db
    .updateTable('webhook_deliveries')
    .set(changes)
    .where('id', '=', seen.id)
    .where('status', '=', seen.status)
    .where('attempts', '=', seen.attempts)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Queued jobs of a pool whose delivery for their current wait was made before `before`, with that delivery. */
export async function jobsUnclaimedSince(db: Kysely<Database>, poolId: string, before: number): Promise<DeliveryRow[]> {
  return db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('jobs', (join) => join.onRef('jobs.id', '=', 'd.job_id').onRef('jobs.queued_count', '=', 'd.sequence'))
    .selectAll('d')
    .where('jobs.pool_id', '=', poolId)
    .where('jobs.status', '=', 'queued')
    .where('d.created_at', '<', before)
    .limit(100)
    .execute();
}

/** Forgets deliveries older than `before`: the record is for troubleshooting, not an archive. */
export async function pruneDeliveries(db: Kysely<Database>, before: number): Promise<number> {
  const result = await db.deleteFrom('webhook_deliveries').where('created_at', '<', before).where('status', 'in', ['delivered', 'failed', 'abandoned']).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** The pool and organization a delivery's payload names. */
export async function poolOfDelivery(db: Kysely<Database>, poolId: string): Promise<{ id: string; name: string; organization: string }> {
  return db
    .selectFrom('agent_pools')
    .innerJoin('organizations', 'organizations.id', 'agent_pools.organization_id')
    .select(['agent_pools.id', 'agent_pools.name', 'organizations.name as organization'])
    .where('agent_pools.id', '=', poolId)
    .executeTakeFirstOrThrow();
}

/** The job, run and workspace a delivery's payload names. */
export async function jobOfDelivery(db: Kysely<Database>, jobId: string) {
  return db
    .selectFrom('jobs')
    .innerJoin('runs', 'runs.id', 'jobs.run_id')
    .innerJoin('workspaces', 'workspaces.id', 'runs.workspace_id')
    .select(['jobs.id', 'jobs.kind', 'jobs.attempt', 'runs.id as run_id', 'workspaces.id as workspace_id', 'workspaces.name as workspace'])
    .where('jobs.id', '=', jobId)
    .executeTakeFirst();
}

export async function isJobQueued(db: Kysely<Database>, jobId: string): Promise<boolean> {
  const row = await db.selectFrom('jobs').select('status').where('id', '=', jobId).executeTakeFirst();
  return row?.status === 'queued';
}
