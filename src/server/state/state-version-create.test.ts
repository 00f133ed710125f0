// Creating a state version through the API (go-tfe StateVersions.Create), as
// the `tofu` CLI does when it runs the engine itself: only under the
// caller's own lock, and only a state that matches what the request says of it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { agentPaths } from '../../protocol/agent-api.ts';
import { basicAuth, queueRun, setupWorkspace, startApply, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { createDocument, fetchSigned, foreignToken, jsonApi, lock, md5, post, pushState, secondToken, stateText } from './state-api.test-support.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(async () => {
  await server.close();
});

const create = (workspaceId: string, document: unknown, token?: string) => post(server, `/api/v2/workspaces/${workspaceId}/state-versions`, document, token);

function assertError(response: { status: number; text: string; json: { errors?: { code: string; detail?: string }[] } }, status: number, code: string, detail?: RegExp): void {
  assert.equal(response.status, status, response.text);
  assert.equal(response.json.errors?.[0]?.code, code, response.text);
  if (detail) assert.match(response.json.errors?.[0]?.detail ?? '', detail);
}

test('a state created under the caller\'s lock becomes the current state version, its file exactly as sent', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const state = stateText(1, 'lin-1', { greeting: { value: 'hello', type: 'string' } });
  assert.equal((await lock(server, workspaceId)).status, 200);
  const created = await create(workspaceId, createDocument(state, { 'json-state': '', 'json-state-outputs': Buffer.from('{}').toString('base64') }));
  assert.equal(created.status, 201, created.text);
  const { id, attributes, relationships } = created.json.data;
  assert.equal(created.json.data.type, 'state-versions');
  assert.equal(attributes.serial, 1);
  assert.equal(attributes.lineage, 'lin-1');
  assert.equal(attributes.md5, md5(state));
  assert.equal(attributes.size, Buffer.byteLength(state));
  assert.equal(attributes.status, 'finalized');
  assert.equal(attributes['resources-processed'], true);
  assert.equal(attributes['hosted-json-state-download-url'], null);
  assert.ok(!Number.isNaN(Date.parse(attributes['created-at'])));
  assert.deepEqual(relationships.outputs.data, [{ id: `${id}-greeting`, type: 'state-version-outputs' }]);
  assert.deepEqual(relationships.run.data, null);

  const current = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version`);
  assert.equal(current.json.data.id, id);
  assert.equal(current.json.data.attributes.md5, md5(state));
  const download = await fetchSigned(server, current.json.data.attributes['hosted-state-download-url']);
  assert.equal(download.status, 200);
  assert.equal(download.text, state);
});

test('go-tfe\'s Upload probe (no state) is told the exact words that make it send the state inline', async () => {
  const { workspaceId } = await setupWorkspace(server);
  await lock(server, workspaceId);
  const state = stateText(1, 'lin');
  for (const attributes of [{ state: undefined }, { state: '' }]) {
    const probe = await create(workspaceId, createDocument(state, attributes));
    assertError(probe, 422, 'validation_failed', /param is missing or the value is empty: state/);
  }
});

test('a state is refused unless the caller\'s own API token holds the lock', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const state = createDocument(stateText(1, 'lin'));
  assertError(await create(workspaceId, state), 409, 'conflict', /is not locked/);

  const other = await secondToken(server);
  assert.equal((await lock(server, workspaceId, other)).status, 200);
  assertError(await create(workspaceId, state), 409, 'conflict', /is locked by User \(API token at-/);
  assert.equal((await create(workspaceId, state, other)).status, 201, 'the holder itself may');
  assert.equal((await post(server, `/api/v2/workspaces/${workspaceId}/actions/unlock`, undefined, other)).status, 200);

  // A run's job holding the lock (through the HTTP backend) shuts users out too.
  const runId = await queueRun(server, workspaceId);
  const apply = await startApply(server, session, runId);
  const jobLock = await server.request('POST', agentPaths.jobStateLock, { authorization: basicAuth(apply.job_token), json: { ID: 'engine-lock', Who: 'runner' } });
  assert.equal(jobLock.status, 200, jobLock.text);
  assertError(await create(workspaceId, createDocument(stateText(2, 'lin'))), 409, 'conflict', new RegExp(`is locked by Run ${runId}`));
  assertError(await lock(server, workspaceId), 409, 'conflict', new RegExp(`already locked by Run ${runId}`));
});

test('a job\'s engine can neither write state nor lock it while a user holds the lock, and never sees the user\'s lock id', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const apply = await startApply(server, session, await queueRun(server, workspaceId));
  assert.equal((await lock(server, workspaceId)).status, 200);
  const lockRow = await server.ctx.db.selectFrom('state_locks').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirstOrThrow();
  const auth = basicAuth(apply.job_token);
  for (const ID of [undefined, lockRow.lock_id]) {
    const write = await server.request('POST', `${agentPaths.jobState}${ID ? `?ID=${ID}` : ''}`, { authorization: auth, body: stateText(1, 'l'), contentType: 'application/json' });
    assertError(write, 423, 'state_locked');
  }
  const engineLock = await server.request('POST', agentPaths.jobStateLock, { authorization: auth, json: { ID: 'engine', Who: 'runner' } });
  assert.equal(engineLock.status, 423, engineLock.text);
  assert.equal(engineLock.json.ID, undefined, 'the user\'s lock id is not shown');
  assert.match(engineLock.json.Who, /^API token at-/);
  assert.equal(engineLock.json.Info, 'Locked by OpenTofu');
  const release = await server.request('DELETE', agentPaths.jobStateLock, { authorization: auth, json: { ID: lockRow.lock_id } });
  assertError(release, 409, 'state_lock_mismatch');
  assert.equal((await server.request('GET', `/api/v2/workspaces/${workspaceId}`)).json.data.attributes.locked, true);
});

test('md5, serial and lineage must match the decoded state, and every field must decode', async () => {
  const { workspaceId } = await setupWorkspace(server);
  await lock(server, workspaceId);
  const state = stateText(3, 'lin-a');
  assertError(await create(workspaceId, createDocument(state, { md5: md5('something else') })), 422, 'validation_failed', /not the MD5 of the decoded state/);
  assertError(await create(workspaceId, createDocument(state, { serial: 4 })), 422, 'validation_failed', /serial 4 does not match the serial 3/);
  assertError(await create(workspaceId, createDocument(state, { lineage: 'lin-b' })), 422, 'validation_failed', /lineage "lin-b" does not match the lineage "lin-a"/);
  for (const field of ['state', 'json-state', 'json-state-outputs']) {
    for (const bad of ['not base64!', 'YWJj\nZA==', 'YWJjZA']) {
      assertError(await create(workspaceId, createDocument(state, { [field]: bad })), 422, 'validation_failed', new RegExp(`${field} is not valid base64`));
    }
  }
  const notJson = 'this is no state';
  assertError(await create(workspaceId, createDocument(stateText(1, 'x'), { state: Buffer.from(notJson).toString('base64'), md5: md5(notJson) })), 400, 'invalid_request');
  const noSerial = '{"lineage":"x"}';
  assertError(await create(workspaceId, createDocument(stateText(1, 'x'), { state: Buffer.from(noSerial).toString('base64'), md5: md5(noSerial) })), 422, 'validation_failed');
  for (const attributes of [{ serial: -1 }, { serial: 1.5 }, { serial: '3' }, { md5: undefined }, { force: 'yes' }]) {
    assertError(await create(workspaceId, createDocument(state, attributes)), 422, 'validation_failed');
  }
  assertError(await create(workspaceId, { data: { type: 'workspaces', attributes: {} } }), 422, 'validation_failed');
  assertError(await create(workspaceId, undefined), 400, 'invalid_request');
  const broken = await server.request('POST', `/api/v2/workspaces/${workspaceId}/state-versions`, { body: '{"data":', contentType: jsonApi });
  assertError(broken, 400, 'invalid_request');
  // Lineage may be left out (TFE: early states had none); the state's own is kept.
  const noLineage = await create(workspaceId, createDocument(state, { lineage: undefined }));
  assert.equal(noLineage.status, 201, noLineage.text);
  assert.equal(noLineage.json.data.attributes.lineage, 'lin-a');
  const rows = await server.ctx.db.selectFrom('state_versions').select('id').where('workspace_id', '=', workspaceId).execute();
  assert.equal(rows.length, 1, 'no refused request stored anything');
});

test('an older serial of the same lineage is refused unless forced', async () => {
  const { workspaceId } = await setupWorkspace(server);
  assert.equal((await pushState(server, workspaceId, stateText(5, 'lin'))).status, 201);
  const older = await pushState(server, workspaceId, stateText(4, 'lin'));
  assertError(older, 409, 'state_serial_conflict', /serial 4 is older than the stored serial 5/);
  // Versions of one millisecond are ordered by serial: let the clock move for the older one.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const forced = await pushState(server, workspaceId, stateText(2, 'lin'), { force: true });
  assert.equal(forced.status, 201, forced.text);
  const current = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version`);
  assert.equal(current.json.data.id, forced.json.data.id);
});

test('the current serial again is the current version if it is the same state, 409 in TFE\'s words if not', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const state = stateText(5, 'lin', { marker: { value: 'first', type: 'string' } });
  const first = await pushState(server, workspaceId, state);
  assert.equal(first.status, 201, first.text);
  const again = await pushState(server, workspaceId, state);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.data.id, first.json.data.id, 'no second version of the same state');
  const changed = stateText(5, 'lin', { marker: { value: 'second', type: 'string' } });
  assertError(await pushState(server, workspaceId, changed), 409, 'conflict', /The MD5 hash of the state provided does not match what is currently known for the same serial number/);
  const versions = await server.ctx.db.selectFrom('state_versions').select('id').where('workspace_id', '=', workspaceId).execute();
  assert.deepEqual(versions.map((row) => row.id), [first.json.data.id]);
  const forced = await pushState(server, workspaceId, changed, { force: true });
  assert.equal(forced.status, 201, forced.text);
  const current = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version?include=outputs`);
  assert.equal(current.json.data.id, forced.json.data.id);
  assert.equal(current.json.included[0].attributes.value, 'second');
});

test('another lineage than the current state\'s is refused unless forced; then its serials follow on', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const first = await pushState(server, workspaceId, stateText(3, 'lin'));
  assert.equal(first.status, 201, first.text);
  for (const serial of [1, 3, 9]) {
    assertError(await pushState(server, workspaceId, stateText(serial, 'another')), 409, 'conflict', /The lineage provided in the state file does not match the value currently known/);
  }
  const forced = await pushState(server, workspaceId, stateText(1, 'another'), { force: true });
  assert.equal(forced.status, 201, forced.text);
  const next = await pushState(server, workspaceId, stateText(2, 'another'));
  assert.equal(next.status, 201, next.text);
  assertError(await pushState(server, workspaceId, stateText(4, 'lin')), 409, 'conflict', /lineage provided/);
  const current = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version`);
  assert.equal(current.json.data.id, next.json.data.id);
  assert.equal(current.json.data.attributes.lineage, 'another');
});

test('a run given as the state\'s run must be one of the workspace', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const other = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId);
  const foreignRun = await queueRun(server, other.workspaceId);
  await lock(server, workspaceId);
  const run = (id: string) => ({ run: { data: { type: 'runs', id } } });
  assertError(await create(workspaceId, createDocument(stateText(1, 'l'), {}, run(foreignRun))), 404, 'not_found');
  assertError(await create(workspaceId, createDocument(stateText(1, 'l'), {}, run('run-nope'))), 404, 'not_found');
  const created = await create(workspaceId, createDocument(stateText(1, 'l'), {}, run(runId)));
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(created.json.data.relationships.run.data, { id: runId, type: 'runs' });
});

test('sensitive output values are kept in the state file only, never in the database', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const secret = 'hunter2-create-test';
  const created = await pushState(server, workspaceId, stateText(1, 'l', { password: { value: secret, type: 'string', sensitive: true } }));
  assert.equal(created.status, 201, created.text);
  const row = await server.ctx.db.selectFrom('state_versions').selectAll().where('id', '=', created.json.data.id).executeTakeFirstOrThrow();
  assert.ok(!row.outputs.includes(secret), row.outputs);
  assert.ok(!created.text.includes(secret));
});

test('another organization\'s token finds neither the workspace nor its lock', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const stranger = await foreignToken(server);
  assertError(await create(workspaceId, createDocument(stateText(1, 'l')), stranger), 404, 'not_found');
  for (const action of ['lock', 'unlock', 'force-unlock']) {
    assertError(await post(server, `/api/v2/workspaces/${workspaceId}/actions/${action}`, undefined, stranger), 404, 'not_found');
  }
  assertError(await post(server, `/api/v2/workspaces/${workspaceId}/state-versions`, createDocument(stateText(1, 'l')), 'opa_notatokenatall'), 401, 'token_invalid');
  assertError(await server.request('POST', `/api/v2/workspaces/${workspaceId}/state-versions`, { authorization: '', json: {} }), 401, 'unauthorized');
});

test('a body larger than the state limit allows is refused before it is read, a decoded state too large after', async () => {
  const small = await startInProcessServer({ OUTPOST_MAX_STATE_MB: '1' });
  try {
    const { workspaceId } = await setupWorkspace(small);
    await lock(small, workspaceId);
    const huge = `{"data":{"type":"state-versions","attributes":{"serial":1,"md5":"x","state":"${'A'.repeat(6 * 1024 * 1024)}"}}}`;
    const refused = await small.request('POST', `/api/v2/workspaces/${workspaceId}/state-versions`, { body: huge, contentType: jsonApi });
    assertError(refused, 413, 'payload_too_large');
    const padding = ' '.repeat(1024 * 1024 + 10);
    const big = stateText(1, 'l').replace('{', `{${padding}`);
    assertError(await post(small, `/api/v2/workspaces/${workspaceId}/state-versions`, createDocument(big)), 413, 'payload_too_large', /OUTPOST_MAX_STATE_MB=1/);
  } finally {
    await small.close();
  }
});
