// The queue's statements, on SQLite and PostgreSQL: a claim leases up to N of
// a pool's oldest queued jobs in one statement and returns each with its
// assignment context; concurrent claims never lease one job twice; a
// heartbeat's lease extension is one statement; and a poll finds the jobs
// leased to its agent that the agent does not hold.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Kysely, KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { createTestDatabase, databaseBackends, type TestDatabase } from '../../../test/support/postgres.ts';
import { openDatabase, type Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { hashToken, newId } from '../ids.ts';
import { insertChunk } from '../logs/repo.ts';
import { insertPool } from '../pools/repo.ts';
import { insertRun } from '../runs/repo.ts';
import { insertWorkspace } from '../workspaces/repo.ts';
import { claimQueuedJobs, extendLeases, findJob, insertQueuedJob, leasedJobsNotHeld, updateJob, type ClaimedJob, type Lease } from './repo.ts';

/** Counts the statements a database handle runs. */
class StatementCounter implements KyselyPlugin {
  count = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    this.count += 1;
    return args.result;
  }
}

function leases(count: number): Lease[] {
  return Array.from({ length: count }, () => ({ leaseId: newId('lease'), tokenHash: hashToken(newId('ot')) }));
}

interface Fixture {
  db: Kysely<Database>;
  poolId: string;
  /** Queues a job in a new run of the workspace (`engine`), created at `createdAt`; returns its id. */
  queue(createdAt: number, options?: { engine?: 'opentofu' | 'terraform'; poolId?: string }): Promise<string>;
}

async function fixture(db: Kysely<Database>): Promise<Fixture> {
  await db.insertInto('organizations').values({ id: 'org-test', name: 'test', created_at: 0 }).onConflict((c) => c.doNothing()).execute();
  const newPool = async () => {
    const id = newId('apool');
    await insertPool(db, { id, organization_id: 'org-test', name: id, kind: 'runner', created_at: 0 });
    return id;
  };
  const poolId = await newPool();
  const workspaces = new Map<string, string>();
  const workspaceOf = async (engine: 'opentofu' | 'terraform', pool: string) => {
    const key = `${engine} ${pool}`;
    if (!workspaces.has(key)) {
      const id = newId('ws');
      await insertWorkspace(db, {
        id,
        organization_id: 'org-test',
        name: id,
        engine,
        engine_version: engine === 'opentofu' ? '1.10.10' : '1.5.7',
        working_directory: '',
        pool_id: pool,
        auto_apply: 0,
        current_run_id: null,
        created_at: 0,
        updated_at: 0,
        execution_mode: 'agent',
        description: '',
      });
      workspaces.set(key, id);
    }
    return workspaces.get(key)!;
  };
  return {
    db,
    poolId,
    async queue(createdAt, options = {}) {
      const pool = options.poolId ?? poolId;
      const workspaceId = await workspaceOf(options.engine ?? 'opentofu', pool);
      const runId = newId('run');
      await insertRun(db, {
        id: runId,
        workspace_id: workspaceId,
        configuration_version_id: newId('cv'),
        status: 'plan_queued',
        message: '',
        is_destroy: 0,
        plan_only: 1,
        auto_apply: 0,
        has_changes: null,
        resource_additions: null,
        resource_changes: null,
        resource_destructions: null,
        error_code: null,
        error_message: null,
        status_timestamps: '{}',
        created_at: createdAt,
        updated_at: createdAt,
        source: 'tfe-api',
        plan_options: null,
      });
      const id = newId('job');
      await insertQueuedJob(db, { id, runId, poolId: pool, kind: 'plan', createdAt });
      return id;
    },
  };
}

for (const dialect of databaseBackends()) {
  describe(`the job queue's statements (${dialect})`, () => {
    let database: Db;
    let postgres: TestDatabase | undefined;
    let dataDir: string;
    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-queue-'));
      postgres = dialect === 'postgres' ? await createTestDatabase() : undefined;
      database = await openDatabase({ dataDir, databaseUrl: postgres?.url });
    });
    after(async () => {
      await database.close();
      await postgres?.drop();
      await rm(dataDir, { recursive: true, force: true });
    });

    const claim = (db: Kysely<Database>, poolId: string, agentId: string, offered: Lease[], now = 1_000) =>
      claimQueuedJobs(db, dialect, poolId, { agentId, expiresAt: now + 30_000, now, leases: offered });

    test('a claim leases at most N of the pool\'s oldest queued jobs, in one statement, each with its assignment context', async () => {
      const { db, poolId, queue } = await fixture(database.kysely);
      const ids = [await queue(10), await queue(20, { engine: 'terraform' }), await queue(30), await queue(40), await queue(50)];
      const otherPool = await queue(5, { poolId: (await fixture(db)).poolId });
      // The second job's run has 7 bytes of plan log from an earlier attempt.
      const secondRun = (await findJob(db, ids[1]!))!.run_id;
      await insertChunk(db, secondRun, 'plan', 0, Buffer.from('abc'));
      await insertChunk(db, secondRun, 'plan', 3, Buffer.from('defg'));

      const counter = new StatementCounter();
      const offered = leases(3);
      const claimed = await claim(db.withPlugin(counter), poolId, 'agent-a', offered);
      assert.equal(counter.count, 1, 'one statement');
      const byId = new Map(claimed.map((job) => [job.id, job]));
      assert.deepEqual([...byId.keys()].sort(), ids.slice(0, 3).sort(), 'the three oldest of the pool');
      assert.deepEqual(new Set(claimed.map((job) => job.lease_id)), new Set(offered.map((lease) => lease.leaseId)), 'each job took one lease of the claim');
      for (const job of claimed) {
        const lease = offered.find((candidate) => candidate.leaseId === job.lease_id)!;
        const stored = (await findJob(db, job.id))!;
        assert.deepEqual(
          { status: stored.status, agent: stored.agent_id, lease: stored.lease_id, token: stored.job_token_hash, expires: stored.lease_expires_at, leasedAt: stored.leased_at },
          { status: 'leased', agent: 'agent-a', lease: lease.leaseId, token: lease.tokenHash, expires: 31_000, leasedAt: 1_000 },
        );
        assert.equal(job.status, 'leased');
      }
      const context = (job: ClaimedJob | undefined) => job && { engine: job.engine, version: job.engine_version, log: job.log_size };
      assert.deepEqual(context(byId.get(ids[0]!)), { engine: 'opentofu', version: '1.10.10', log: 0 });
      assert.deepEqual(context(byId.get(ids[1]!)), { engine: 'terraform', version: '1.5.7', log: 7 });

      // Fewer queued jobs than leases: the rest of the leases go unused.
      const rest = await claim(db, poolId, 'agent-b', leases(5));
      assert.deepEqual(rest.map((job) => job.id).sort(), ids.slice(3).sort());
      assert.deepEqual(await claim(db, poolId, 'agent-b', leases(2)), [], 'nothing left in the pool');
      assert.equal((await findJob(db, otherPool))!.status, 'queued', 'another pool\'s job is not touched');
    });

    test('concurrent claims never lease one job to two agents', async () => {
      const { db, poolId, queue } = await fixture(database.kysely);
      const jobs = 40;
      for (let i = 0; i < jobs; i++) await queue(100 + i);
      const agents = Array.from({ length: 12 }, (_, i) => `agent-${i}`);
      const claimedBy = new Map<string, { agent: string; lease: string }[]>();
      // Rounds of simultaneous claims of 4 each (48 asked for 40 jobs), until the queue is empty.
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(agents.map(async (agent) => ({ agent, claimed: await claim(db, poolId, agent, leases(4)) })));
        for (const { agent, claimed } of results) {
          assert.ok(claimed.length <= 4);
          for (const job of claimed) {
            assert.ok(job.engine && job.engine_version, 'leased with its context');
            claimedBy.set(job.id, [...(claimedBy.get(job.id) ?? []), { agent, lease: job.lease_id! }]);
          }
        }
      }
      assert.equal(claimedBy.size, jobs, 'every job was claimed');
      const twice = [...claimedBy].filter(([, claims]) => claims.length > 1);
      assert.deepEqual(twice, [], 'no job was claimed twice');
      for (const [jobId, [only]] of claimedBy) {
        const stored = (await findJob(db, jobId))!;
        assert.deepEqual({ agent: stored.agent_id, lease: stored.lease_id }, only, `job ${jobId} is leased to the agent that received it`);
      }
    });

    test('a heartbeat extends the leases the agent holds in one statement and tells which were current', async () => {
      const { db, poolId, queue } = await fixture(database.kysely);
      for (let i = 0; i < 4; i++) await queue(200 + i);
      const [a, b, c, d] = await claim(db, poolId, 'agent-h', leases(4));
      await updateJob(db, b!.id, { status: 'running' });
      await updateJob(db, c!.id, { status: 'succeeded' });
      const counter = new StatementCounter();
      const listed = [a!, b!, c!, d!].map((job) => ({ job_id: job.id, lease_id: job.lease_id! }));
      listed[3] = { job_id: d!.id, lease_id: 'lease-not-current' };
      const current = await extendLeases(db.withPlugin(counter), 'agent-h', listed, 99_000);
      assert.equal(counter.count, 1, 'one statement');
      assert.deepEqual([...current].sort(), [a!.id, b!.id].sort(), 'leased and running jobs with their current lease');
      assert.equal((await findJob(db, a!.id))!.lease_expires_at, 99_000);
      assert.equal((await findJob(db, d!.id))!.lease_expires_at, 31_000, 'a stale lease is not extended');
      assert.deepEqual(await extendLeases(db, 'agent-other', listed, 99_000), new Set(), 'nor another agent\'s');
    });

    test('the jobs leased to an agent that it does not hold: claimed before the poll, never started, not listed', async () => {
      const { db, poolId, queue } = await fixture(database.kysely);
      for (let i = 0; i < 4; i++) await queue(300 + i);
      const [held, started, missing] = await claim(db, poolId, 'agent-p', leases(3), 1_000);
      const [later] = await claim(db, poolId, 'agent-p', leases(1), 2_000);
      await updateJob(db, started!.id, { status: 'running' });
      const list = [{ job_id: held!.id, lease_id: held!.lease_id! }];
      assert.deepEqual((await leasedJobsNotHeld(db, 'agent-p', list, 2_000)).map((job) => job.id), [missing!.id]);
      assert.deepEqual((await leasedJobsNotHeld(db, 'agent-p', list, 2_001)).map((job) => job.id).sort(), [missing!.id, later!.id].sort());
      // A job listed with a lease that is not its current one is not held.
      const stale = [{ job_id: held!.id, lease_id: 'lease-old' }];
      assert.deepEqual((await leasedJobsNotHeld(db, 'agent-p', stale, 2_000)).map((job) => job.id).sort(), [held!.id, missing!.id].sort());
      assert.deepEqual(await leasedJobsNotHeld(db, 'agent-q', [], 5_000), [], 'another agent holds none of them');
    });
  });
}
