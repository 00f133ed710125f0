// SQL for jobs: the queue, leases and signals. Every update an agent causes
// is fenced by the lease id, so a zombie agent cannot change a job that was
// handed to someone else.
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Engine, JobKind, JobStatus } from '../../protocol/statuses.ts';
import type { DialectName } from '../db/database.ts';
import type { Database, JobsTable } from '../db/schema.ts';

export type JobRow = Selectable<JobsTable>;
const active: JobStatus[] = ['leased', 'running'];

export async function insertJob(db: Kysely<Database>, row: JobsTable): Promise<void> {
  await db.insertInto('jobs').values(row).execute();
}

export async function findJob(db: Kysely<Database>, id: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The newest job of a run's phase (a re-queued plan keeps one job row). */
export async function findPhaseJob(db: Kysely<Database>, runId: string, kind: 'plan' | 'apply'): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('run_id', '=', runId).where('kind', '=', kind).orderBy('created_at', 'desc').executeTakeFirst();
}

/**
 * Atomically hands the oldest queued job of a pool to an agent: one UPDATE
 * whose subquery picks the row. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets
 * concurrent claims pass each other instead of queueing on the same row;
 * SQLite serialises writers, so the single statement is atomic already.
 */
export async function claimNextJob(
  db: Kysely<Database>,
  dialect: DialectName,
  poolId: string,
  lease: { agentId: string; leaseId: string; expiresAt: number; tokenHash: string; now: number },
): Promise<JobRow | undefined> {
  return db
    .updateTable('jobs')
    .set({
      status: 'leased',
      agent_id: lease.agentId,
      lease_id: lease.leaseId,
      lease_expires_at: lease.expiresAt,
      job_token_hash: lease.tokenHash,
      leased_at: lease.now,
    })
    .where('id', '=', (eb) =>
      eb
        .selectFrom('jobs')
        .select('id')
        .where('pool_id', '=', poolId)
        .where('status', '=', 'queued')
        .orderBy('created_at')
        .orderBy('id')
        .limit(1)
        .$if(dialect === 'postgres', (q) => q.forUpdate().skipLocked()),
    )
    .where('status', '=', 'queued')
    .returningAll()
    .executeTakeFirst();
}

/**
 * What an assignment tells the agent besides the job: its workspace's engine,
 * and how much of the phase's log the server already has (a re-queued plan
 * continues its log). One query: every claim asks it.
 */
export async function assignmentContext(
  db: Kysely<Database>,
  runId: string,
  kind: JobKind,
): Promise<{ engine: Engine; engine_version: string; log_size: number } | undefined> {
  const row = await db
    .selectFrom('runs')
    .innerJoin('workspaces', 'workspaces.id', 'runs.workspace_id')
    .select((eb) => [
      'workspaces.engine',
      'workspaces.engine_version',
      eb
        .selectFrom('log_chunks')
        .select(sql<number>`${sql.ref('log_chunks.offset')} + length(${sql.ref('log_chunks.data')})`.as('end'))
        .where('log_chunks.run_id', '=', runId)
        .where('log_chunks.phase', '=', kind)
        .orderBy('log_chunks.offset', 'desc')
        .limit(1)
        .as('log_size'),
    ])
    .where('runs.id', '=', runId)
    .executeTakeFirst();
  return row && { engine: row.engine, engine_version: row.engine_version, log_size: Number(row.log_size ?? 0) };
}

/**
 * Fenced update: applies only while the lease is current and the job active
 * (and, for the sweeper, only while the lease is still expired). Under
 * PostgreSQL's READ COMMITTED a concurrent writer re-evaluates these
 * conditions after the first commits, so exactly one of two racers wins.
 */
export async function updateLeasedJob(
  db: Kysely<Database>,
  jobId: string,
  leaseId: string,
  changes: Updateable<JobsTable>,
  expiredBefore?: number,
): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set(changes)
    .where('id', '=', jobId)
    .where('lease_id', '=', leaseId)
    .where('status', 'in', active)
    .$if(expiredBefore !== undefined, (q) => q.where('lease_expires_at', '<', expiredBefore!))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Claims a job's claim back (its poll response could not be delivered): it ran nothing. */
export async function returnToQueue(db: Kysely<Database>, jobId: string, leaseId: string): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set({ status: 'queued', agent_id: null, lease_id: null, lease_expires_at: null, job_token_hash: null, leased_at: null })
    .where('id', '=', jobId)
    .where('lease_id', '=', leaseId)
    .where('status', '=', 'leased')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function updateJob(db: Kysely<Database>, jobId: string, changes: Updateable<JobsTable>, onlyIfStatus?: JobStatus[]): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set(changes)
    .where('id', '=', jobId)
    .$if(onlyIfStatus !== undefined, (q) => q.where('status', 'in', onlyIfStatus!))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Extends the leases the agent still holds; returns the ids that were current. */
export async function extendLeases(
  db: Kysely<Database>,
  agentId: string,
  running: { job_id: string; lease_id: string }[],
  expiresAt: number,
): Promise<Set<string>> {
  const current = new Set<string>();
  for (const job of running) {
    const result = await db
      .updateTable('jobs')
      .set({ lease_expires_at: expiresAt })
      .where('id', '=', job.job_id)
      .where('agent_id', '=', agentId)
      .where('lease_id', '=', job.lease_id)
      .where('status', 'in', active)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1) current.add(job.job_id);
  }
  return current;
}

export async function signalsForAgent(db: Kysely<Database>, agentId: string, undeliveredOnly: boolean): Promise<JobRow[]> {
  return db
    .selectFrom('jobs')
    .selectAll()
    .where('agent_id', '=', agentId)
    .where('signal', 'is not', null)
    .$if(undeliveredOnly, (q) => q.where('signal_delivered', '=', 0))
    .execute();
}

export async function markSignalsDelivered(db: Kysely<Database>, jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return;
  await db.updateTable('jobs').set({ signal_delivered: 1 }).where('id', 'in', jobIds).execute();
}

export async function expiredLeases(db: Kysely<Database>, now: number): Promise<JobRow[]> {
  return db.selectFrom('jobs').selectAll().where('status', 'in', active).where('lease_expires_at', '<', now).execute();
}

export async function countRunningJobs(db: Kysely<Database>, agentId: string): Promise<number> {
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('agent_id', '=', agentId)
    .where('status', 'in', active)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** How many jobs are in each status (statuses with none are absent), for /metrics. */
export async function countJobsByStatus(db: Kysely<Database>): Promise<{ status: JobStatus; count: number }[]> {
  const rows = await db
    .selectFrom('jobs')
    .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
    .groupBy('status')
    .execute();
  return rows.map((row) => ({ status: row.status, count: Number(row.n) }));
}

/** Queued jobs of every pool, pools with none included (0), for /metrics. */
export async function countQueuedJobsByPool(db: Kysely<Database>): Promise<{ poolId: string; count: number }[]> {
  const rows = await db
    .selectFrom('agent_pools')
    .leftJoin('jobs', (join) => join.onRef('jobs.pool_id', '=', 'agent_pools.id').on('jobs.status', '=', 'queued'))
    .select((eb) => ['agent_pools.id as pool_id', eb.fn.count<number>('jobs.id').as('n')])
    .groupBy('agent_pools.id')
    .execute();
  return rows.map((row) => ({ poolId: row.pool_id, count: Number(row.n) }));
}
