// Another agent of the pool takes over a job it was handed (jobs/:id/adopt):
// the Kubernetes worker on the node where a controller's job pod landed, or
// a controller that restarted. The lease moves under a new id, fencing the
// previous holder out; the job token the sandbox has keeps working; an
// agent of another pool, or one naming a stale lease, gets nothing; the
// adopter asking again gets the same answer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { agentPaths, type JobAdoption, type JobAssignment } from '../../protocol/agent-api.ts';
import { queueRun, registerAgent, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { findJob } from '../jobs/repo.ts';

describe('adopting a job another agent of the pool holds', () => {
  let server: InProcessServer;
  before(async () => {
    server = await startInProcessServer();
  });
  after(() => server.close());

  const claim = async (session: string): Promise<JobAssignment> => {
    const answer = await server.request('POST', agentPaths.poll, { token: session, json: { free_slots: 1, running: [], wait_ms: 50 } });
    assert.equal(answer.status, 200, answer.text);
    const [job] = answer.json.jobs as JobAssignment[];
    assert.ok(job, 'nothing was claimed');
    return job;
  };
  const adopt = (session: string, jobId: string, leaseId: string) => server.request('POST', agentPaths.jobAdopt(jobId), { token: session, json: { lease_id: leaseId } });

  it('moves the lease to the adopter under a new id; the previous holder is fenced out; the job token still works', async () => {
    const { workspaceId, session: controller, poolToken } = await setupWorkspace(server);
    await queueRun(server, workspaceId);
    const job = await claim(controller);
    const worker = await registerAgent(server, poolToken);

    const answer = await adopt(worker, job.job_id, job.lease_id);
    assert.equal(answer.status, 200, answer.text);
    const adoption = answer.json as JobAdoption;
    assert.equal(adoption.job_id, job.job_id);
    assert.equal(adoption.run_id, job.run_id);
    assert.equal(adoption.kind, 'plan');
    assert.deepEqual(adoption.engine, job.engine);
    assert.equal(adoption.started, false);
    assert.notEqual(adoption.lease_id, job.lease_id);

    // The controller's lease is gone: it can neither start nor renew the job.
    assert.equal((await server.request('POST', agentPaths.jobStart(job.job_id), { token: controller, json: { lease_id: job.lease_id } })).status, 404);
    const beat = await server.request('POST', agentPaths.heartbeat, { token: controller, json: { status: 'busy', running: [{ job_id: job.job_id, lease_id: job.lease_id }] } });
    assert.deepEqual(beat.json.stale, [job.job_id]);
    // The worker runs it with the new lease; the sandbox's job token is unchanged.
    assert.equal((await server.request('POST', agentPaths.jobStart(job.job_id), { token: worker, json: { lease_id: adoption.lease_id } })).status, 204);
    assert.equal((await server.request('GET', agentPaths.jobSpec, { token: job.job_token })).status, 200);
    assert.equal((await findJob(server.ctx.db, job.job_id))?.status, 'running');
  });

  it('a job the adopter has not listed yet is not handed back by its next poll: it came in the adopt answer, not a poll\'s', async () => {
    const { workspaceId, session: controller, poolToken } = await setupWorkspace(server);
    await queueRun(server, workspaceId);
    const job = await claim(controller);
    const worker = await registerAgent(server, poolToken);
    const adoption = (await adopt(worker, job.job_id, job.lease_id)).json as JobAdoption;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const poll = await server.request('POST', agentPaths.poll, { token: worker, json: { free_slots: 0, running: [], wait_ms: 50 } });
    assert.equal(poll.status, 200, poll.text);
    const stored = await findJob(server.ctx.db, job.job_id);
    assert.equal(stored?.status, 'leased');
    assert.equal(stored?.lease_id, adoption.lease_id);
  });

  it('the same adoption asked again (its answer was lost) gets the same answer; another agent naming the old lease gets lease_stale', async () => {
    const { workspaceId, session: controller, poolToken } = await setupWorkspace(server);
    await queueRun(server, workspaceId);
    const job = await claim(controller);
    const worker = await registerAgent(server, poolToken);
    const first = await adopt(worker, job.job_id, job.lease_id);
    assert.equal(first.status, 200, first.text);
    const again = await adopt(worker, job.job_id, job.lease_id);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json, first.json);

    const other = await registerAgent(server, poolToken);
    const late = await adopt(other, job.job_id, job.lease_id);
    assert.equal(late.status, 409, late.text);
    assert.equal(late.json.errors[0].code, 'lease_stale');
    assert.equal((await findJob(server.ctx.db, job.job_id))?.lease_id, (first.json as JobAdoption).lease_id);
  });

  it('a started job can be adopted again (a restarted worker), and says it started', async () => {
    const { workspaceId, session: first, poolToken } = await setupWorkspace(server);
    await queueRun(server, workspaceId);
    const job = await claim(first);
    assert.equal((await server.request('POST', agentPaths.jobStart(job.job_id), { token: first, json: { lease_id: job.lease_id } })).status, 204);
    const restarted = await registerAgent(server, poolToken);
    const answer = await adopt(restarted, job.job_id, job.lease_id);
    assert.equal(answer.status, 200, answer.text);
    assert.equal((answer.json as JobAdoption).started, true);
  });

  it('a stale lease id is lease_stale; an agent of another pool, or an unknown job, gets not_found', async () => {
    const { workspaceId, session, poolToken } = await setupWorkspace(server);
    await queueRun(server, workspaceId);
    const job = await claim(session);
    const worker = await registerAgent(server, poolToken);

    const stale = await adopt(worker, job.job_id, 'lease-not-the-current-one');
    assert.equal(stale.status, 409, stale.text);
    assert.equal(stale.json.errors[0].code, 'lease_stale');

    const { session: stranger } = await setupWorkspace(server);
    const foreign = await adopt(stranger, job.job_id, job.lease_id);
    assert.equal(foreign.status, 404, foreign.text);
    assert.equal(foreign.json.errors[0].code, 'not_found');
    assert.equal((await adopt(worker, 'job-doesnotexist', job.lease_id)).status, 404);

    // Nothing moved: the first agent still holds the job.
    assert.equal((await findJob(server.ctx.db, job.job_id))?.lease_id, job.lease_id);
  });

  it('a finished job cannot be adopted', async () => {
    const { workspaceId, session, poolToken } = await setupWorkspace(server);
    await queueRun(server, workspaceId, { 'plan-only': true });
    const job = await claim(session);
    assert.equal((await server.request('POST', agentPaths.jobStart(job.job_id), { token: session, json: { lease_id: job.lease_id } })).status, 204);
    assert.equal((await server.request('POST', agentPaths.jobFinish(job.job_id), { token: session, json: { lease_id: job.lease_id, status: 'failed', error: { code: 'engine_failed', message: 'x' } } })).status, 204);
    const late = await adopt(await registerAgent(server, poolToken), job.job_id, job.lease_id);
    assert.equal(late.status, 409, late.text);
    assert.equal(late.json.errors[0].code, 'lease_stale');
  });
});
