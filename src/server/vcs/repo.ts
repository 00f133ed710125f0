// SQL for version control: providers, workspaces' repository links, the
// webhook deliveries seen, the commits that may start runs, the work queue
// (fetch a commit, list a repository's refs, post a commit status) and the
// commit statuses kept in step with runs.
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database } from '../db/schema.ts';
import type {
  VcsCommitStatusesTable,
  VcsDeliveriesTable,
  VcsProvidersTable,
  VcsTasksTable,
  VcsTriggersTable,
  VcsTriggerStatus,
  WorkspaceRepositoriesTable,
} from '../db/schema-vcs.ts';

export type ProviderRow = Selectable<VcsProvidersTable>;
export type RepositoryLinkRow = Selectable<WorkspaceRepositoriesTable>;
export type TriggerRow = Selectable<VcsTriggersTable>;
export type DeliveryRow = Selectable<VcsDeliveriesTable>;
export type TaskRow = Selectable<VcsTasksTable>;
export type CommitStatusRow = Selectable<VcsCommitStatusesTable>;

// --- providers ---------------------------------------------------------------

export async function findProvider(db: Kysely<Database>, id: string): Promise<ProviderRow | undefined> {
  return db.selectFrom('vcs_providers').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findProviderByName(db: Kysely<Database>, organizationId: string, name: string): Promise<ProviderRow | undefined> {
  return db.selectFrom('vcs_providers').selectAll().where('organization_id', '=', organizationId).where('name', '=', name).executeTakeFirst();
}

export async function listProviders(db: Kysely<Database>, organizationId: string): Promise<ProviderRow[]> {
  return db.selectFrom('vcs_providers').selectAll().where('organization_id', '=', organizationId).orderBy('name').execute();
}

export async function insertProvider(db: Kysely<Database>, row: VcsProvidersTable): Promise<void> {
  await db.insertInto('vcs_providers').values(row).execute();
}

export async function updateProvider(db: Kysely<Database>, id: string, changes: Updateable<VcsProvidersTable>): Promise<void> {
  await db.updateTable('vcs_providers').set(changes).where('id', '=', id).execute();
}

export async function deleteProvider(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('vcs_providers').where('id', '=', id).execute();
}

export async function countLinksOfProvider(db: Kysely<Database>, providerId: string): Promise<number> {
  const row = await db.selectFrom('workspace_repositories').select((eb) => eb.fn.countAll<number>().as('n')).where('provider_id', '=', providerId).executeTakeFirstOrThrow();
  return Number(row.n);
}

// --- repository links ----------------------------------------------------------

export async function findLink(db: Kysely<Database>, workspaceId: string): Promise<RepositoryLinkRow | undefined> {
  return db.selectFrom('workspace_repositories').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirst();
}

export async function upsertLink(db: Kysely<Database>, row: WorkspaceRepositoriesTable): Promise<void> {
  const { workspace_id: _id, created_at: _created, ...changes } = row;
  await db.insertInto('workspace_repositories').values(row).onConflict((oc) => oc.column('workspace_id').doUpdateSet(changes)).execute();
}

export async function updateLink(db: Kysely<Database>, workspaceId: string, changes: Updateable<WorkspaceRepositoriesTable>): Promise<void> {
  await db.updateTable('workspace_repositories').set(changes).where('workspace_id', '=', workspaceId).execute();
}

export async function deleteLink(db: Kysely<Database>, workspaceId: string): Promise<void> {
  await db.deleteFrom('workspace_repositories').where('workspace_id', '=', workspaceId).execute();
}

/** The links of a provider (a webhook's candidates: the repository is compared by the service, which knows each forge's rules). */
export async function linksOfProvider(db: Kysely<Database>, providerId: string): Promise<RepositoryLinkRow[]> {
  return db.selectFrom('workspace_repositories').selectAll().where('provider_id', '=', providerId).execute();
}

/** Links whose provider polls and whose last look is older than its interval. */
export async function linksDueForPolling(db: Kysely<Database>, now: number): Promise<(RepositoryLinkRow & { poll_interval_ms: number })[]> {
  const rows = await db
    .selectFrom('workspace_repositories')
    .innerJoin('vcs_providers', 'vcs_providers.id', 'workspace_repositories.provider_id')
    .selectAll('workspace_repositories')
    .select('vcs_providers.poll_interval_ms')
    .where('vcs_providers.poll_interval_ms', '>', 0)
    .execute();
  return rows.filter((row) => row.last_polled_at === null || row.last_polled_at + Number(row.poll_interval_ms) <= now);
}

// --- deliveries ----------------------------------------------------------------

/** Records a delivery; false when its id was seen before (a redelivery). */
export async function insertDeliveryOnce(db: Kysely<Database>, row: VcsDeliveriesTable): Promise<boolean> {
  const result = await db
    .insertInto('vcs_deliveries')
    .values(row)
    .onConflict((oc) => oc.columns(['provider_id', 'delivery_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function updateDeliveryOutcome(db: Kysely<Database>, id: string, outcome: string): Promise<void> {
  await db.updateTable('vcs_deliveries').set({ outcome }).where('id', '=', id).execute();
}

export async function listDeliveries(db: Kysely<Database>, providerId: string, limit: number): Promise<DeliveryRow[]> {
  return db.selectFrom('vcs_deliveries').selectAll().where('provider_id', '=', providerId).orderBy('received_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

export async function pruneDeliveries(db: Kysely<Database>, before: number): Promise<void> {
  await db.deleteFrom('vcs_deliveries').where('received_at', '<', before).execute();
}

// --- triggers ----------------------------------------------------------------

/** Records a commit that may start a run; false when the same commit and cause was recorded before. */
export async function insertTriggerOnce(db: Kysely<Database>, row: VcsTriggersTable): Promise<boolean> {
  const result = await db
    .insertInto('vcs_triggers')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'trigger_key']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findTrigger(db: Kysely<Database>, id: string): Promise<TriggerRow | undefined> {
  return db.selectFrom('vcs_triggers').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Triggers waiting for this commit's configuration (fetched once for all of them). */
export async function waitingTriggersOf(db: Kysely<Database>, sha: string): Promise<TriggerRow[]> {
  return db.selectFrom('vcs_triggers').selectAll().where('status', '=', 'waiting').where('sha', '=', sha).orderBy('created_at').execute();
}

export async function waitingTriggersOfWorkspace(db: Kysely<Database>, workspaceId: string): Promise<TriggerRow[]> {
  return db.selectFrom('vcs_triggers').selectAll().where('workspace_id', '=', workspaceId).where('status', '=', 'waiting').execute();
}

export async function listTriggers(db: Kysely<Database>, workspaceId: string, limit: number): Promise<TriggerRow[]> {
  return db.selectFrom('vcs_triggers').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').limit(limit).execute();
}

/** Moves a trigger on from `waiting` only (a conditional write: replicas finishing the same fetch act once). */
export async function settleTrigger(
  db: Kysely<Database>,
  id: string,
  status: Exclude<VcsTriggerStatus, 'waiting'>,
  changes: { reason?: string | null; run_id?: string | null; changed_files?: string | null },
  now: number,
): Promise<boolean> {
  const result = await db.updateTable('vcs_triggers').set({ ...changes, status, updated_at: now }).where('id', '=', id).where('status', '=', 'waiting').executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

// --- the work queue ----------------------------------------------------------------


/** Queues a task unless the same work (dedupe key) is outstanding; returns whether it was queued. */
export async function insertTaskOnce(db: Kysely<Database>, row: VcsTasksTable): Promise<boolean> {
  const result = await db.insertInto('vcs_tasks').values(row).onConflict((oc) => oc.column('dedupe_key').doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findTask(db: Kysely<Database>, id: string): Promise<TaskRow | undefined> {
  return db.selectFrom('vcs_tasks').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Due tasks of the providers the caller serves: those reached through
 * `poolId`, or (null) those the server reaches itself. A running task whose
 * lock expired, or whose agent went offline or left, is due again: a VCS
 * agent killed mid-task loses it within a lease timeout, not the lock's ten
 * minutes.
 */
export async function dueTasks(db: Kysely<Database>, poolId: string | null, now: number, limit: number): Promise<TaskRow[]> {
  return db
    .selectFrom('vcs_tasks')
    .innerJoin('vcs_providers', 'vcs_providers.id', 'vcs_tasks.provider_id')
    .selectAll('vcs_tasks')
    .where((eb) => (poolId === null ? eb('vcs_providers.pool_id', 'is', null) : eb('vcs_providers.pool_id', '=', poolId)))
    .where((eb) =>
      eb.or([
        eb.and([eb('vcs_tasks.status', '=', 'queued'), eb('vcs_tasks.next_attempt_at', '<=', now)]),
        eb.and([eb('vcs_tasks.status', '=', 'running'), eb('vcs_tasks.locked_until', '<', now)]),
        eb.and([
          eb('vcs_tasks.status', '=', 'running'),
          eb(
            'vcs_tasks.agent_id',
            'in',
            eb.selectFrom('agents').select('agents.id').where((inner) => inner.or([inner('agents.status', '=', 'offline'), inner('agents.deregistered_at', 'is not', null)])),
          ),
        ]),
      ]),
    )
    .orderBy('vcs_tasks.next_attempt_at')
    .limit(limit)
    .execute();
}

/** Takes a task for `lockMs` if nobody else did meanwhile (conditional on the status and lock seen). */
export async function takeTask(db: Kysely<Database>, task: TaskRow, agentId: string | null, now: number, lockMs: number): Promise<boolean> {
  const result = await db
    .updateTable('vcs_tasks')
    .set({ status: 'running', agent_id: agentId, locked_until: now + lockMs, attempts: sql`attempts + 1`, updated_at: now })
    .where('id', '=', task.id)
    .where('status', '=', task.status)
    .where((eb) => (task.locked_until === null ? eb('locked_until', 'is', null) : eb('locked_until', '=', task.locked_until)))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Ends a running task (done or failed for good): its dedupe key is freed for later work. */
export async function endTask(db: Kysely<Database>, id: string, status: 'done' | 'failed', error: string | null, now: number, found: string | null = null): Promise<boolean> {
  const result = await db
    .updateTable('vcs_tasks')
    .set({ status, error, result: found, dedupe_key: null, locked_until: null, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Puts a running task back in the queue to try again at `at`. */
export async function retryTask(db: Kysely<Database>, id: string, error: string, at: number, now: number): Promise<void> {
  await db
    .updateTable('vcs_tasks')
    .set({ status: 'queued', error, agent_id: null, locked_until: null, next_attempt_at: at, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .execute();
}

/** Outstanding tasks of a provider, for the workspace's explanation of what it waits for. */
export async function countOutstandingTasks(db: Kysely<Database>, providerId: string): Promise<number> {
  const row = await db
    .selectFrom('vcs_tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('provider_id', '=', providerId)
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function pruneTasks(db: Kysely<Database>, before: number): Promise<void> {
  await db.deleteFrom('vcs_tasks').where('status', 'in', ['done', 'failed']).where('updated_at', '<', before).execute();
}

/** Agents of the pool that are connected (idle or busy, not deregistered). */
export async function countConnectedAgents(db: Kysely<Database>, poolId: string): Promise<number> {
  const row = await db
    .selectFrom('agents')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('pool_id', '=', poolId)
    .where('status', 'in', ['idle', 'busy'])
    .where('deregistered_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

// --- commit statuses ------------------------------------------------------------

export async function insertCommitStatus(db: Kysely<Database>, row: VcsCommitStatusesTable): Promise<void> {
  await db.insertInto('vcs_commit_statuses').values(row).onConflict((oc) => oc.column('run_id').doNothing()).execute();
}

/** Statuses whose run changed since they were last compared, with the run's current status and counts. */
export async function statusesToCompare(db: Kysely<Database>, limit: number) {
  return db
    .selectFrom('vcs_commit_statuses')
    .innerJoin('runs', 'runs.id', 'vcs_commit_statuses.run_id')
    .selectAll('vcs_commit_statuses')
    .select(['runs.status', 'runs.updated_at', 'runs.plan_only', 'runs.has_changes', 'runs.resource_additions', 'runs.resource_changes', 'runs.resource_destructions', 'runs.error_message'])
    .whereRef('runs.updated_at', '>', 'vcs_commit_statuses.checked_at')
    .limit(limit)
    .execute();
}

export async function markStatusCompared(db: Kysely<Database>, runId: string, reported: string | null, checkedAt: number): Promise<void> {
  await db.updateTable('vcs_commit_statuses').set({ reported, checked_at: checkedAt }).where('run_id', '=', runId).execute();
}

// --- triggers once their run is queued ----------------------------------------------

export async function finishTriggerRun(db: Kysely<Database>, id: string, runId: string, now: number): Promise<void> {
  await db.updateTable('vcs_triggers').set({ run_id: runId, updated_at: now }).where('id', '=', id).execute();
}

export async function failQueuedTrigger(db: Kysely<Database>, id: string, reason: string, now: number): Promise<void> {
  await db.updateTable('vcs_triggers').set({ status: 'failed', reason, updated_at: now }).where('id', '=', id).where('status', '=', 'queued').execute();
}

/** Links whose default branch is not known yet and that were never looked at: a look at the refs tells. */
export async function linksWithoutBranch(db: Kysely<Database>): Promise<RepositoryLinkRow[]> {
  return db.selectFrom('workspace_repositories').selectAll().where('branch', '=', '').where('last_polled_at', 'is', null).execute();
}

export async function poolName(db: Kysely<Database>, poolId: string): Promise<string | undefined> {
  return (await db.selectFrom('agent_pools').select('name').where('id', '=', poolId).executeTakeFirst())?.name;
}

export async function poolKind(db: Kysely<Database>, poolId: string): Promise<string | undefined> {
  return (await db.selectFrom('agent_pools').select('kind').where('id', '=', poolId).executeTakeFirst())?.kind;
}
