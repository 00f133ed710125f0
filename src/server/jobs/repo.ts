// SQL for jobs: the queue, leases and signals. Every update an agent causes
// is fenced by the lease id, so a zombie agent cannot change a job that was
// handed to someone else.
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import { activeJobStatuses, type Engine, type JobStatus } from '../../protocol/statuses.ts';
import type { DialectName } from '../db/database.ts';
import { schemaColumns, type Database, type JobsTable } from '../db/schema.ts';

export type JobRow = Selectable<JobsTable>;

/** Every column of a job, by name: SQLite's RETURNING takes no `jobs.*` once a statement reads other tables. */
const jobColumns = Object.keys(schemaColumns.jobs).map((column) => `jobs.${column}` as `jobs.${keyof JobsTable}`);

/** Inserts a new job of a run, queued for its pool's agents. */
export async function insertQueuedJob(
  db: Kysely<Database>,
  job: { id: string; runId: string; poolId: string; kind: 'plan' | 'apply'; createdAt: number },
): Promise<void> {
  const row: JobsTable = {
    id: job.id,
    run_id: job.runId,
    pool_id: job.poolId,
    kind: job.kind,
    status: 'queued',
    attempt: 1,
    queued_count: 1,
    agent_id: null,
    lease_id: null,
    lease_expires_at: null,
    job_token_hash: null,
    signal: null,
    signal_delivered: 0,
    result: null,
    error_code: null,
    error_message: null,
    created_at: job.createdAt,
    leased_at: null,
    finished_at: null,
  };
  await db.insertInto('jobs').values(row).execute();
}

export async function findJob(db: Kysely<Database>, id: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findJobByTokenHash(db: Kysely<Database>, tokenHash: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('job_token_hash', '=', tokenHash).executeTakeFirst();
}

/** The newest job of a run's phase (a re-queued plan keeps one job row). */
export async function findPhaseJob(db: Kysely<Database>, runId: string, kind: 'plan' | 'apply'): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('run_id', '=', runId).where('kind', '=', kind).orderBy('created_at', 'desc').executeTakeFirst();
}

/** One lease a claim may hand out: its id and the hash of the job token that goes with it. */
export interface Lease {
  readonly leaseId: string;
  readonly tokenHash: string;
}

/** A job just leased, with what its assignment tells the agent besides the job. */
export interface ClaimedJob extends JobRow {
  readonly engine: Engine;
  readonly engine_version: string;
  /** Bytes of the phase's log already stored: a re-queued plan continues its log. */
  readonly log_size: number;
}

/**
 * Leases up to `leases.length` of the pool's oldest queued jobs to one agent
 * in one statement, and returns them with their assignment context, so no
 * job is ever leased without what its agent needs to run it.
 *
 * `ready` picks the jobs (oldest first, as the queue has always been served)
 * and `ranked` numbers them 1…n, so job i takes the i-th of the leases made
 * for this claim (lease ids and job token hashes are made by the caller: a
 * token must be random and is stored only hashed). On PostgreSQL `FOR UPDATE
 * SKIP LOCKED` lets concurrent claims pass each other instead of queueing on
 * the same rows, and `status = 'queued'` is checked again on the row being
 * updated; SQLite runs one writer at a time, so the same statement without
 * the locking clause is atomic already. Only jobs whose run and workspace
 * exist are ready: the context comes from them.
 */
export async function claimQueuedJobs(
  db: Kysely<Database>,
  dialect: DialectName,
  poolId: string,
  claim: { agentId: string; expiresAt: number; now: number; leases: readonly Lease[]; onlyJob?: string | undefined },
): Promise<ClaimedJob[]> {
  if (claim.leases.length === 0) return [];
  const slots = claim.leases.map((lease, index) => sql`(cast(${index + 1} as integer), ${lease.leaseId}, ${lease.tokenHash})`);
  const rows = await db
    .with(
      (cte) => cte('ready').materialized(),
      (qb) =>
        qb
          .selectFrom('jobs')
          .innerJoin('runs', 'runs.id', 'jobs.run_id')
          .innerJoin('workspaces', 'workspaces.id', 'runs.workspace_id')
          .select(['jobs.id', 'jobs.created_at'])
          .where('jobs.pool_id', '=', poolId)
          .where('jobs.status', '=', 'queued')
          .$if(claim.onlyJob !== undefined, (q) => q.where('jobs.id', '=', claim.onlyJob!))
          .orderBy('jobs.created_at')
          .orderBy('jobs.id')
          .limit(claim.leases.length)
          .$if(dialect === 'postgres', (q) => q.forUpdate(['jobs']).skipLocked()),
    )
    .with('ranked', (qb) =>
      qb.selectFrom('ready').select(['ready.id', sql<number>`row_number() over (order by ${sql.ref('ready.created_at')}, ${sql.ref('ready.id')})`.as('slot')]),
    )
    .with('leases(slot, lease_id, job_token_hash)', () => sql<{ slot: number; lease_id: string; job_token_hash: string }>`(values ${sql.join(slots)})`)
    .updateTable('jobs')
    .from(['ranked', 'leases'])
    .set((eb) => ({
      status: 'leased',
      agent_id: claim.agentId,
      lease_id: eb.ref('leases.lease_id'),
      lease_expires_at: claim.expiresAt,
      job_token_hash: eb.ref('leases.job_token_hash'),
      leased_at: claim.now,
    }))
    .whereRef('jobs.id', '=', 'ranked.id')
    .whereRef('leases.slot', '=', 'ranked.slot')
    .where('jobs.status', '=', 'queued')
    // SQLite's RETURNING may name only the updated table, so the context comes through subqueries.
    .returning(jobColumns)
    .returning((eb) => [
      eb
        .selectFrom('runs')
        .innerJoin('workspaces', 'workspaces.id', 'runs.workspace_id')
        .select('workspaces.engine')
        .whereRef('runs.id', '=', 'jobs.run_id')
        .as('engine'),
      eb
        .selectFrom('runs')
        .innerJoin('workspaces', 'workspaces.id', 'runs.workspace_id')
        .select('workspaces.engine_version')
        .whereRef('runs.id', '=', 'jobs.run_id')
        .as('engine_version'),
      eb
        .selectFrom('log_chunks')
        .select(sql<number>`${sql.ref('log_chunks.offset')} + length(${sql.ref('log_chunks.data')})`.as('end'))
        .whereRef('log_chunks.run_id', '=', 'jobs.run_id')
        .whereRef('log_chunks.phase', '=', 'jobs.kind')
        .orderBy('log_chunks.offset', 'desc')
        .limit(1)
        .as('log_size'),
    ])
    .execute();
  return rows.map(({ engine, engine_version, log_size, ...job }) => ({ ...job, engine: engine!, engine_version: engine_version!, log_size: Number(log_size ?? 0) }));
}

/** The engine a job runs with: its workspace's. */
export async function engineOfJob(db: Kysely<Database>, jobId: string): Promise<{ engine: Engine; engine_version: string }> {
  return db
    .selectFrom('jobs')
    .innerJoin('runs', 'runs.id', 'jobs.run_id')
    .innerJoin('workspaces', 'workspaces.id', 'runs.workspace_id')
    .select(['workspaces.engine', 'workspaces.engine_version'])
    .where('jobs.id', '=', jobId)
    .executeTakeFirstOrThrow();
}

/**
 * Fenced update: applies only while the lease is current and the job in one
 * of `statuses` (and, for the sweeper, only while the lease is still
 * expired). Under PostgreSQL's READ COMMITTED a concurrent writer
 * re-evaluates these conditions after the first commits, so exactly one of
 * two racers wins.
 */
export async function updateLeasedJob(
  db: Kysely<Database>,
  jobId: string,
  leaseId: string,
  changes: Updateable<JobsTable>,
  options: { expiredBefore?: number | undefined; statuses?: readonly JobStatus[] } = {},
): Promise<boolean> {
  const { expiredBefore, statuses = activeJobStatuses } = options;
  const result = await db
    .updateTable('jobs')
    .set(changes)
    .where('id', '=', jobId)
    .where('lease_id', '=', leaseId)
    .where('status', 'in', [...statuses])
    .$if(expiredBefore !== undefined, (q) => q.where('lease_expires_at', '<', expiredBefore!))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function updateJob(db: Kysely<Database>, jobId: string, changes: Updateable<JobsTable>, onlyIfStatus?: readonly JobStatus[]): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set(changes)
    .where('id', '=', jobId)
    .$if(onlyIfStatus !== undefined, (q) => q.where('status', 'in', [...onlyIfStatus!]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Extends, in one statement, the leases the agent still holds; returns the ids of the jobs whose lease was current. */
export async function extendLeases(
  db: Kysely<Database>,
  agentId: string,
  running: readonly { job_id: string; lease_id: string }[],
  expiresAt: number,
): Promise<Set<string>> {
  if (running.length === 0) return new Set();
  const rows = await db
    .updateTable('jobs')
    .set({ lease_expires_at: expiresAt })
    .where('agent_id', '=', agentId)
    .where('status', 'in', [...activeJobStatuses])
    .where(({ eb, refTuple, tuple }) => eb(refTuple('id', 'lease_id'), 'in', running.map((job) => tuple(job.job_id, job.lease_id))))
    .returning('id')
    .execute();
  return new Set(rows.map((row) => row.id));
}

/**
 * Jobs leased to the agent (claimed, not started) before `claimedBefore`
 * whose lease is not among `held`: the agent does not have them.
 */
export async function leasedJobsNotHeld(
  db: Kysely<Database>,
  agentId: string,
  held: readonly { job_id: string; lease_id: string }[],
  claimedBefore: number,
): Promise<JobRow[]> {
  return db
    .selectFrom('jobs')
    .selectAll()
    .where('agent_id', '=', agentId)
    .where('status', '=', 'leased')
    .where('leased_at', '<', claimedBefore)
    .$if(held.length > 0, (q) =>
      q.where(({ eb, refTuple, tuple }) => eb(refTuple('id', 'lease_id'), 'not in', held.map((job) => tuple(job.job_id, job.lease_id)))),
    )
    .execute();
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
  return db.selectFrom('jobs').selectAll().where('status', 'in', [...activeJobStatuses]).where('lease_expires_at', '<', now).execute();
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
