// The users' workspace lock (go-tfe Workspaces.Lock, Unlock, ForceUnlock):
// the answers go-tfe turns into ErrWorkspaceLocked, ErrWorkspaceNotLocked,
// ErrWorkspaceLockedByRun and ErrWorkspaceLockedByUser.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { agentPaths } from '../../protocol/agent-api.ts';
import { basicAuth, queueRun, setupWorkspace, startApply, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { lockHolderOf } from './service.ts';
import { jsonApi, post, secondToken } from './state-api.test-support.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(async () => {
  await server.close();
});

const action = (workspaceId: string, name: 'lock' | 'unlock' | 'force-unlock', token?: string, body?: unknown) =>
  post(server, `/api/v2/workspaces/${workspaceId}/actions/${name}`, body, token);

function assertConflict(response: { status: number; text: string; json: { errors?: { code: string; detail?: string }[] } }, detail: RegExp): void {
  assert.equal(response.status, 409, response.text);
  assert.equal(response.json.errors?.[0]?.code, 'conflict');
  assert.match(response.json.errors?.[0]?.detail ?? '', detail);
}

test('lock and unlock answer with the workspace; a second lock and an unlock of a free workspace are 409', async () => {
  const { workspaceId } = await setupWorkspace(server);
  // go-tfe sends its lock options as a JSON:API document.
  const locked = await action(workspaceId, 'lock', undefined, { data: { type: '', attributes: { reason: 'Locked by OpenTofu' } } });
  assert.equal(locked.status, 200, locked.text);
  assert.equal(locked.json.data.type, 'workspaces');
  assert.equal(locked.json.data.id, workspaceId);
  assert.equal(locked.json.data.attributes.locked, true);
  const row = await server.ctx.db.selectFrom('state_locks').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirstOrThrow();
  assert.equal(row.job_id, null);
  assert.match(row.token_id ?? '', /^at-/);
  const info = JSON.parse(row.info) as Record<string, string>;
  assert.equal(info.ID, row.lock_id);
  assert.equal(info.Info, 'Locked by OpenTofu');
  assert.deepEqual(await lockHolderOf(server.ctx, workspaceId), { kind: 'user', tokenId: row.token_id });

  // ErrWorkspaceLocked: any 409 from actions/lock, the holder's own second lock included.
  assertConflict(await action(workspaceId, 'lock'), /already locked by User \(API token at-/);

  const unlocked = await action(workspaceId, 'unlock');
  assert.equal(unlocked.status, 200, unlocked.text);
  assert.equal(unlocked.json.data.attributes.locked, false);
  assert.equal(await lockHolderOf(server.ctx, workspaceId), undefined);
  // ErrWorkspaceNotLocked: a 409 that names no holder.
  const again = await action(workspaceId, 'unlock');
  assertConflict(again, /is not locked/);
  assert.doesNotMatch(again.text, /is locked by/);
  assertConflict(await action(workspaceId, 'force-unlock'), /is not locked/);
});

test('the lock body may be TFE\'s {reason}, absent, or empty with the JSON:API content type', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const bodies: (() => ReturnType<typeof action>)[] = [
    () => action(workspaceId, 'lock', undefined, { reason: 'maintenance' }),
    () => action(workspaceId, 'lock'),
    () => server.request('POST', `/api/v2/workspaces/${workspaceId}/actions/lock`, { body: '', contentType: jsonApi }),
  ];
  for (const lock of bodies) {
    const locked = await lock();
    assert.equal(locked.status, 200, locked.text);
    assert.equal((await server.request('POST', `/api/v2/workspaces/${workspaceId}/actions/unlock`, { body: '', contentType: jsonApi })).status, 200);
  }
  for (const bad of [{ reason: 'x'.repeat(4097) }, { reason: 7 }, { data: { attributes: { reason: ['x'] } } }]) {
    const refused = await action(workspaceId, 'lock', undefined, bad);
    assert.equal(refused.status, 422, refused.text);
    assert.equal(refused.json.errors[0].code, 'validation_failed');
  }
  assert.equal(await lockHolderOf(server.ctx, workspaceId), undefined, 'a refused lock request took no lock');
});

test('only the token that locked may unlock; any token may force-unlock', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const other = await secondToken(server);
  assert.equal((await action(workspaceId, 'lock', other)).status, 200);
  // ErrWorkspaceLockedByUser: go-tfe looks for "is locked by User".
  assertConflict(await action(workspaceId, 'unlock'), /is locked by User \(API token at-.*\); only its holder may unlock it/);
  assertConflict(await action(workspaceId, 'lock'), /already locked by User/);
  const forced = await action(workspaceId, 'force-unlock');
  assert.equal(forced.status, 200, forced.text);
  assert.equal(forced.json.data.attributes.locked, false);
  // The former holder now finds it unlocked.
  assertConflict(await action(workspaceId, 'unlock', other), /is not locked/);
});

test('a run\'s lock is named as the run\'s; users cannot unlock it, force-unlock removes it', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId);
  const apply = await startApply(server, session, runId);
  const auth = basicAuth(apply.job_token);
  const engineLock = { ID: 'engine-lock', Operation: 'OperationTypeApply', Who: 'runner@host' };
  assert.equal((await server.request('POST', agentPaths.jobStateLock, { authorization: auth, json: engineLock })).status, 200);
  assert.deepEqual(await lockHolderOf(server.ctx, workspaceId), { kind: 'job', jobId: apply.job_id, runId });
  assert.equal((await server.request('GET', `/api/v2/workspaces/${workspaceId}`)).json.data.attributes.locked, true);

  // ErrWorkspaceLockedByRun: go-tfe looks for "is locked by Run".
  assertConflict(await action(workspaceId, 'unlock'), new RegExp(`is locked by Run ${runId}`));
  assertConflict(await action(workspaceId, 'lock'), new RegExp(`already locked by Run ${runId}`));
  assert.equal((await action(workspaceId, 'force-unlock')).status, 200);
  assert.equal(await lockHolderOf(server.ctx, workspaceId), undefined);
  // The engine's own unlock of a lock that is gone is fine, as before.
  assert.equal((await server.request('DELETE', agentPaths.jobStateLock, { authorization: auth, json: engineLock })).status, 200);
  // And with a user's lock in place, the job's unlock does not remove it.
  assert.equal((await action(workspaceId, 'lock')).status, 200);
  const userLockId = (await server.ctx.db.selectFrom('state_locks').select('lock_id').where('workspace_id', '=', workspaceId).executeTakeFirstOrThrow()).lock_id;
  const jobUnlock = await server.request('DELETE', agentPaths.jobStateLock, { authorization: auth, json: { ID: userLockId } });
  assert.equal(jobUnlock.status, 409, jobUnlock.text);
  assert.equal((await lockHolderOf(server.ctx, workspaceId))?.kind, 'user');
});

test('the lock actions need an API token', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  for (const name of ['lock', 'unlock', 'force-unlock'] as const) {
    const anonymous = await server.request('POST', `/api/v2/workspaces/${workspaceId}/actions/${name}`, { authorization: '' });
    assert.equal(anonymous.status, 401, anonymous.text);
    const agent = await server.request('POST', `/api/v2/workspaces/${workspaceId}/actions/${name}`, { token: session });
    assert.equal(agent.status, 401, agent.text);
    assert.equal(agent.json.errors[0].code, 'token_invalid');
    const missing = await action('ws-doesnotexist1234', name);
    assert.equal(missing.status, 404, missing.text);
  }
});
