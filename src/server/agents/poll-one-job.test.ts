// A poll that names one job (a single-run agent started for it by the pool
// webhook) claims that job or nothing: the pool's older jobs stay queued,
// another pool's job is never handed out, and a malformed id is refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { agentPaths, type JobAssignment } from '../../protocol/agent-api.ts';
import { queueRun, registerAgent, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { findJob } from '../jobs/repo.ts';

describe('a poll for one named job', () => {
  let server: InProcessServer;
  before(async () => {
    server = await startInProcessServer();
  });
  after(() => server.close());

  const poll = (session: string, body: Record<string, unknown>) => server.request('POST', agentPaths.poll, { token: session, json: { free_slots: 4, running: [], wait_ms: 50, ...body } });
  /** The run's plan job, once queued (a run's job is queued just after the run is created). */
  const planJobOf = async (runId: string): Promise<string> => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const row = await server.ctx.db.selectFrom('jobs').select('id').where('run_id', '=', runId).where('kind', '=', 'plan').executeTakeFirst();
      if (row) return row.id;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.fail(`run ${runId} has no plan job`);
  };

  it('claims the named job only, however many slots are free; the older job stays queued', async () => {
    const { workspaceId, session } = await setupWorkspace(server);
    const older = await planJobOf(await queueRun(server, workspaceId));
    // A workspace runs one run at a time: the named job is another workspace's, in the same pool.
    const { pool_id: poolId } = await server.ctx.db.selectFrom('workspaces').select('pool_id').where('id', '=', workspaceId).executeTakeFirstOrThrow();
    const other = await server.request('POST', '/api/v2/organizations/default/workspaces', {
      json: { data: { type: 'workspaces', attributes: { name: `second-${Date.now()}`, 'agent-pool-id': poolId } } },
    });
    assert.equal(other.status, 201, other.text);
    const named = await planJobOf(await queueRun(server, other.json.data.id));
    const answer = await poll(session, { job_id: named });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual((answer.json.jobs as JobAssignment[]).map((job) => job.job_id), [named]);
    assert.equal((await findJob(server.ctx.db, older))?.status, 'queued');
  });

  it('gets nothing for a job of another pool, or one already claimed', async () => {
    const { workspaceId, session, poolToken } = await setupWorkspace(server);
    const { session: stranger } = await setupWorkspace(server);
    const job = await planJobOf(await queueRun(server, workspaceId));
    const claimed = async (who: string) => {
      const answer = await poll(who, { job_id: job });
      assert.equal(answer.status, 200, answer.text);
      return (answer.json.jobs as JobAssignment[]).map((assignment) => assignment.job_id);
    };
    assert.deepEqual(await claimed(stranger), []);
    assert.equal((await findJob(server.ctx.db, job))?.status, 'queued');
    assert.deepEqual(await claimed(session), [job]);
    assert.deepEqual(await claimed(await registerAgent(server, poolToken)), [], 'claimed already, by another agent of the pool');
  });

  it('refuses a malformed job id with validation_failed', async () => {
    const { session } = await setupWorkspace(server);
    const answer = await poll(session, { job_id: "job-'; drop table jobs" });
    assert.equal(answer.status, 422, answer.text);
    assert.equal(answer.json.errors[0].code, 'validation_failed');
  });
});
