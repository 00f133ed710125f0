// A job claimed for an agent that never received it (the poll's answer was
// lost, or the agent gave it up before starting it) goes back to the queue
// at the agent's next poll, which lists every job the agent holds, instead
// of waiting for its lease to lapse. Nothing that the agent started or still
// lists is touched, and a heartbeat, which may have been sent before a poll's
// answer arrived, hands nothing back.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { agentPaths, type JobAssignment, type RunningJob } from '../../protocol/agent-api.ts';
import { claimAndStart, queueRun, registerAgent, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { findJob } from '../jobs/repo.ts';

describe('jobs an agent never received', () => {
  let server: InProcessServer;
  before(async () => {
    server = await startInProcessServer();
  });
  after(() => server.close());

  const poll = async (session: string, freeSlots: number, running: RunningJob[] = []): Promise<JobAssignment[]> => {
    const answer = await server.request('POST', agentPaths.poll, { token: session, json: { free_slots: freeSlots, running, wait_ms: 50 } });
    assert.equal(answer.status, 200, answer.text);
    return answer.json.jobs as JobAssignment[];
  };
  const held = (job: JobAssignment): RunningJob => ({ job_id: job.job_id, lease_id: job.lease_id });
  const statusOf = async (jobId: string) => (await findJob(server.ctx.db, jobId))?.status;
  const runStatus = async (runId: string) => (await server.request('GET', `/api/v2/runs/${runId}`)).json.data.attributes.status as string;
  // Leases are compared with the time a poll began, to the millisecond.
  const nextMillisecond = () => sleep(5);

  it('a job whose poll answer was lost is queued again at the agent\'s next poll, and another agent runs it', async () => {
    const { workspaceId, session, poolToken } = await setupWorkspace(server);
    const runId = await queueRun(server, workspaceId);
    const [lost] = await poll(session, 1);
    assert.ok(lost);
    await nextMillisecond();
    // The agent never saw that answer: its next poll lists nothing.
    assert.deepEqual(await poll(session, 0), []);
    assert.equal(await statusOf(lost.job_id), 'queued');
    assert.equal(await runStatus(runId), 'plan_queued');

    const other = await registerAgent(server, poolToken);
    const [again] = await poll(other, 1);
    assert.equal(again?.job_id, lost.job_id);
    assert.notEqual(again?.lease_id, lost.lease_id);
    // The first claim's lease and job token are dead.
    const start = await server.request('POST', agentPaths.jobStart(lost.job_id), { token: session, json: { lease_id: lost.lease_id } });
    assert.equal(start.status, 404, start.text);
    assert.equal((await server.request('GET', agentPaths.jobSpec, { token: lost.job_token })).status, 401);
    assert.equal((await server.request('POST', agentPaths.jobStart(again!.job_id), { token: other, json: { lease_id: again!.lease_id } })).status, 204);
    assert.equal(await runStatus(runId), 'planning');
  });

  it('jobs the agent lists, and jobs it started, stay with it', async () => {
    const { workspaceId, session } = await setupWorkspace(server);
    for (let i = 0; i < 3; i++) await queueRun(server, workspaceId, { 'plan-only': true });
    const [kept, started, dropped] = await poll(session, 3);
    assert.ok(kept && started && dropped);
    assert.equal((await server.request('POST', agentPaths.jobStart(started.job_id), { token: session, json: { lease_id: started.lease_id } })).status, 204);
    await nextMillisecond();
    // Lists the first; the second started (a heartbeat's business, not a poll's); the third it gave up.
    assert.deepEqual(await poll(session, 0, [held(kept)]), []);
    assert.deepEqual([await statusOf(kept.job_id), await statusOf(started.job_id), await statusOf(dropped.job_id)], ['leased', 'running', 'queued']);
  });

  it('an apply never received is queued again as well: it never started, so it changed nothing', async () => {
    const { workspaceId, session } = await setupWorkspace(server);
    const runId = await queueRun(server, workspaceId);
    const plan = await claimAndStart(server, session);
    assert.equal((await server.request('POST', agentPaths.jobResult, { token: plan.job_token, json: { outcome: 'succeeded', has_changes: true } })).status, 204);
    assert.equal((await server.request('POST', agentPaths.jobFinish(plan.job_id), { token: session, json: { lease_id: plan.lease_id, status: 'succeeded' } })).status, 204);
    assert.equal((await server.request('POST', `/api/v2/runs/${runId}/actions/apply`)).status, 202);
    const [apply] = await poll(session, 1);
    assert.equal(apply?.kind, 'apply');
    await nextMillisecond();
    await poll(session, 0);
    assert.equal(await statusOf(apply!.job_id), 'queued');
    assert.equal((await findJob(server.ctx.db, apply!.job_id))?.attempt, 1, 'a job that never started does not use up an attempt');
    assert.equal(await runStatus(runId), 'apply_queued');
  });

  it('a job never received whose run was canceled meanwhile ends canceled, with its run', async () => {
    const { workspaceId, session } = await setupWorkspace(server);
    const runId = await queueRun(server, workspaceId);
    const [job] = await poll(session, 1);
    assert.equal((await server.request('POST', `/api/v2/runs/${runId}/actions/cancel`)).status, 202);
    await nextMillisecond();
    await poll(session, 0);
    assert.equal(await statusOf(job!.job_id), 'canceled');
    assert.equal(await runStatus(runId), 'canceled');
  });

  it('a heartbeat hands nothing back: it may have left before the poll\'s answer arrived', async () => {
    const { workspaceId, session } = await setupWorkspace(server);
    await queueRun(server, workspaceId, { 'plan-only': true });
    const [job] = await poll(session, 1);
    await nextMillisecond();
    const beat = await server.request('POST', agentPaths.heartbeat, { token: session, json: { status: 'idle', running: [] } });
    assert.equal(beat.status, 200, beat.text);
    assert.equal(await statusOf(job!.job_id), 'leased');
  });

  it('an agent that deregisters hands back what it never started', async () => {
    const { workspaceId, session } = await setupWorkspace(server);
    await queueRun(server, workspaceId, { 'plan-only': true });
    await queueRun(server, workspaceId, { 'plan-only': true });
    const [unstarted, started] = await poll(session, 2);
    assert.equal((await server.request('POST', agentPaths.jobStart(started!.job_id), { token: session, json: { lease_id: started!.lease_id } })).status, 204);
    assert.equal((await server.request('POST', agentPaths.deregister, { token: session })).status, 204);
    assert.equal(await statusOf(unstarted!.job_id), 'queued');
    assert.equal(await statusOf(started!.job_id), 'running', 'a started job is left to its lease');
  });
});
