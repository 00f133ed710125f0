// The engine's http state backend stores exactly the bytes the engine sent.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { agentPaths } from '../../protocol/agent-api.ts';
import { basicAuth, queueRun, setupWorkspace, startApply, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(async () => {
  await server.close();
});

test('a state POSTed as application/json round-trips byte for byte', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const apply = await startApply(server, session, await queueRun(server, workspaceId));
  // What JSON.parse would change: a >2^53 integer, a "__proto__" map key,
  // key order, whitespace and an escaped character.
  const state =
    '{\n  "version": 4,\n  "serial": 1,\n  "lineage": "abc",\n  "outputs": {"m": {"value": {"__proto__": "x", "b": 1}, "type": ["map", "string"]}},\n' +
    '  "resources": [{"big": 9007199254740993, "snowflake": 1234567890123456789, "s": "\\u00e9"}]\n}\n';
  const auth = basicAuth(apply.job_token);
  const saved = await server.request('POST', agentPaths.jobState, { authorization: auth, body: state, contentType: 'application/json' });
  assert.equal(saved.status, 200, saved.text);

  const current = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version`);
  assert.equal(current.status, 200, current.text);
  const attributes = current.json.data.attributes;
  assert.equal(attributes.serial, 1);
  assert.equal(attributes.size, Buffer.byteLength(state));
  assert.equal(attributes.sha256, createHash('sha256').update(state).digest('hex'));
  const download = await server.request('GET', `/api/v2/state-versions/${current.json.data.id}/download`);
  assert.equal(download.status, 200);
  assert.equal(download.text, state);
  const engineRead = await server.request('GET', agentPaths.jobState, { authorization: auth });
  assert.equal(engineRead.text, state);
});

test('a state that is not a JSON object with serial and lineage is refused', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const apply = await startApply(server, session, await queueRun(server, workspaceId));
  const auth = basicAuth(apply.job_token);
  const broken = await server.request('POST', agentPaths.jobState, { authorization: auth, body: '{"serial": 1,', contentType: 'application/json' });
  assert.equal(broken.status, 400, broken.text);
  const noLineage = await server.request('POST', agentPaths.jobState, { authorization: auth, body: '{"serial": 1}', contentType: 'application/json' });
  assert.equal(noLineage.status, 422, noLineage.text);
});

test('a state an apply wrote embeds its run with include=run, and the engine may rewrite its serial with other content', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId);
  const auth = basicAuth((await startApply(server, session, runId)).job_token);
  for (const marker of ['a', 'b']) {
    // The API's MD5 check (create-state-version.ts) is not the engine's: its http backend rewrites a serial as it likes.
    const saved = await server.request('POST', agentPaths.jobState, { authorization: auth, body: `{"serial": 1, "lineage": "l", "outputs": {}, "m": "${marker}"}`, contentType: 'application/json' });
    assert.equal(saved.status, 200, saved.text);
  }
  const current = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version?include=run,outputs`);
  assert.equal(current.status, 200, current.text);
  assert.deepEqual(current.json.data.relationships.run.data, { id: runId, type: 'runs' });
  assert.deepEqual((current.json.included as { id: string; type: string }[]).map(({ id, type }) => ({ id, type })), [{ id: runId, type: 'runs' }]);
});
