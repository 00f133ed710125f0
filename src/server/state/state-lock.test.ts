// The state lock belongs to the job that took it: no other job may break it,
// read its id, or write state with it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { agentPaths } from '../../protocol/agent-api.ts';
import type { OutpostError } from '../../protocol/errors.ts';
import { basicAuth, claimAndStart, queueRun, setupWorkspace, startApply, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { lockState, saveState, unlockState } from './service.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(async () => {
  await server.close();
});

const lockInfo = { ID: 'apply-lock-1', Operation: 'OperationTypeApply', Who: 'runner@host', Version: '1.10.10', Created: '2025-01-01T00:00:00Z', Path: '' };
const state = '{"version":4,"serial":1,"lineage":"l","outputs":{},"resources":[]}';

async function lockRows(workspaceId: string) {
  return server.ctx.db.selectFrom('state_locks').selectAll().where('workspace_id', '=', workspaceId).execute();
}

test('a plan-only job can neither learn the apply\'s lock id nor break its lock', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const apply = await startApply(server, session, await queueRun(server, workspaceId));
  const locked = await server.request('POST', agentPaths.jobStateLock, { authorization: basicAuth(apply.job_token), json: lockInfo });
  assert.equal(locked.status, 200, locked.text);

  await queueRun(server, workspaceId, { 'plan-only': true });
  const spy = await claimAndStart(server, session);
  assert.equal(spy.kind, 'plan');
  const auth = basicAuth(spy.job_token);
  for (const ID of ['guess', lockInfo.ID]) {
    const attempt = await server.request('DELETE', agentPaths.jobStateLock, { authorization: auth, json: { ID } });
    assert.equal(attempt.status, 403, attempt.text);
    assert.equal(attempt.json.errors[0].code, 'forbidden');
    assert.ok(!attempt.text.includes(lockInfo.ID), `the answer shows the lock id: ${attempt.text}`);
  }
  assert.equal((await lockRows(workspaceId)).length, 1, 'the apply\'s lock was broken');

  // The owner: a wrong id is refused with the error document, the right one releases.
  const ownerAuth = basicAuth(apply.job_token);
  const wrong = await server.request('DELETE', agentPaths.jobStateLock, { authorization: ownerAuth, json: { ID: 'other' } });
  assert.equal(wrong.status, 409, wrong.text);
  assert.equal(wrong.json.errors[0].code, 'state_lock_mismatch');
  const saved = await server.request('POST', `${agentPaths.jobState}?ID=${lockInfo.ID}`, { authorization: ownerAuth, body: state, contentType: 'application/json' });
  assert.equal(saved.status, 200, saved.text);
  const released = await server.request('DELETE', agentPaths.jobStateLock, { authorization: ownerAuth, json: lockInfo });
  assert.equal(released.status, 200, released.text);
  assert.equal((await lockRows(workspaceId)).length, 0);
  const again = await server.request('DELETE', agentPaths.jobStateLock, { authorization: ownerAuth, json: lockInfo });
  assert.equal(again.status, 200, 'releasing a free lock is fine (the engine may retry)');
});

test('another job holding the lock id still cannot release the lock or write state with it', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const apply = await startApply(server, session, await queueRun(server, workspaceId));
  const withExtra = { ...lockInfo, Extra: 'not kept' };
  assert.equal((await server.request('POST', agentPaths.jobStateLock, { authorization: basicAuth(apply.job_token), json: withExtra })).status, 200);

  // The runs of a workspace are queued one at a time, so no second apply job
  // exists while this one runs; the service is asked directly on behalf of one.
  const stranger = 'job-someone-else';
  await assert.rejects(unlockState(server.ctx, workspaceId, lockInfo.ID, stranger), (error: OutpostError) => {
    assert.equal(error.code, 'state_lock_mismatch');
    assert.ok(!error.message.includes(lockInfo.ID));
    return true;
  });
  assert.equal((await lockRows(workspaceId)).length, 1);
  const write = { runId: null, jobId: stranger, lockId: lockInfo.ID };
  await assert.rejects(saveState(server.ctx, workspaceId, write, Buffer.from(state)), (error: OutpostError) => error.code === 'state_locked');

  // A competing lock attempt learns who holds the lock, but not its id.
  const holder = await lockState(server.ctx, workspaceId, { ID: 'mine' }, stranger);
  assert.deepEqual(holder, { Operation: 'OperationTypeApply', Who: 'runner@host', Version: '1.10.10', Created: '2025-01-01T00:00:00Z', Path: '' });
  // The owner's own second attempt gets the engine's usual answer, id included.
  const own = await server.request('POST', agentPaths.jobStateLock, { authorization: basicAuth(apply.job_token), json: { ...lockInfo, ID: 'second' } });
  assert.equal(own.status, 423, own.text);
  assert.equal(own.json.ID, lockInfo.ID);
  // Extra fields in a LockInfo are not kept (they would be shown to other jobs).
  const rows = await lockRows(workspaceId);
  assert.deepEqual(Object.keys(JSON.parse(rows[0]!.info) as object).sort(), Object.keys(lockInfo).sort());
});
