// State version outputs as the `tofu` CLI reads them for `tofu output`
// (cloud block): the workspace's current outputs with `detailed-type`, then
// each sensitive one by id for its value.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { foreignToken, pushState, stateText } from './state-api.test-support.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(async () => {
  await server.close();
});

const secret = 's3cret-outputs-test';
const outputs = {
  endpoint: { value: 'https://api.example.test', type: 'string' },
  zones: { value: ['a', 'b'], type: ['list', 'string'] },
  tags: { value: { team: 'infra' }, type: ['map', 'string'] },
  settings: { value: { size: 3, on: true }, type: ['object', { size: 'number', on: 'bool' }] },
  count: { value: 3, type: 'number' },
  enabled: { value: false, type: 'bool' },
  pair: { value: ['x', 1], type: ['tuple', ['string', 'number']] },
  password: { value: secret, type: 'string', sensitive: true },
  nested_secret: { value: { key: secret }, type: ['object', { key: 'string' }], sensitive: true },
};

async function workspaceWithOutputs(): Promise<{ workspaceId: string; stateVersionId: string }> {
  const { workspaceId } = await setupWorkspace(server);
  const created = await pushState(server, workspaceId, stateText(1, 'out', outputs));
  assert.equal(created.status, 201, created.text);
  return { workspaceId, stateVersionId: created.json.data.id };
}

test('the current outputs carry TFE\'s type and the engine\'s detailed type; sensitive values are left out of the list', async () => {
  const { workspaceId, stateVersionId } = await workspaceWithOutputs();
  const listed = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version-outputs`);
  assert.equal(listed.status, 200, listed.text);
  assert.ok(!listed.text.includes(secret), 'a sensitive value in the list');
  const byName = Object.fromEntries((listed.json.data as { id: string; type: string; attributes: Record<string, unknown> }[]).map((item) => [item.attributes.name, item]));
  assert.deepEqual(Object.keys(byName).sort(), Object.keys(outputs).sort());
  const expectedTypes: Record<string, string> = {
    endpoint: 'string', zones: 'array', tags: 'object', settings: 'object', count: 'number', enabled: 'boolean', pair: 'array', password: 'string', nested_secret: 'object',
  };
  for (const [name, output] of Object.entries(outputs)) {
    const item = byName[name]!;
    assert.equal(item.type, 'state-version-outputs');
    assert.equal(item.id, `${stateVersionId}-${name}`);
    const sensitive = 'sensitive' in output && output.sensitive;
    assert.deepEqual(item.attributes, { name, sensitive, type: expectedTypes[name], value: sensitive ? null : output.value, 'detailed-type': output.type }, name);
  }
  // One page, whole: the CLI reads no further.
  assert.deepEqual(listed.json.meta.pagination, { 'current-page': 1, 'page-size': 9, 'prev-page': null, 'next-page': null, 'total-pages': 1, 'total-count': 9 });

  // The state version lists the same outputs by id, as go-tfe's StateVersion.Outputs.
  const version = await server.request('GET', `/api/v2/state-versions/${stateVersionId}`);
  assert.deepEqual(
    version.json.data.relationships.outputs.data.map((ref: { id: string }) => ref.id).sort(),
    Object.keys(outputs).map((name) => `${stateVersionId}-${name}`).sort(),
  );
  const ofVersion = await server.request('GET', `/api/v2/state-versions/${stateVersionId}/outputs`);
  assert.deepEqual(ofVersion.json.data, listed.json.data);
});

test('an output read alone has its value, a sensitive one too (what `tofu output` shows)', async () => {
  const { stateVersionId } = await workspaceWithOutputs();
  const read = async (name: string) => server.request('GET', `/api/v2/state-version-outputs/${encodeURIComponent(`${stateVersionId}-${name}`)}`);
  const password = await read('password');
  assert.equal(password.status, 200, password.text);
  assert.deepEqual(password.json.data.attributes, { name: 'password', sensitive: true, type: 'string', value: secret, 'detailed-type': 'string' });
  assert.deepEqual((await read('nested_secret')).json.data.attributes.value, { key: secret });
  assert.deepEqual((await read('zones')).json.data.attributes.value, ['a', 'b']);
  for (const id of [`${stateVersionId}-nope`, `${stateVersionId}`, 'sv-doesnotexist1234-password', 'wsout-abc', `${stateVersionId.slice(0, -1)}-password`]) {
    const missing = await server.request('GET', `/api/v2/state-version-outputs/${encodeURIComponent(id)}`);
    assert.equal(missing.status, 404, `${id}: ${missing.text}`);
    assert.equal(missing.json.errors[0].code, 'not_found');
  }
  const stranger = await foreignToken(server);
  const foreign = await server.request('GET', `/api/v2/state-version-outputs/${stateVersionId}-password`, { token: stranger });
  assert.equal(foreign.status, 404, foreign.text);
  assert.ok(!foreign.text.includes(secret));
});

test('a workspace without state has no outputs, not an error', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const listed = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version-outputs`);
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(listed.json.data, []);
  assert.equal(listed.json.meta.pagination['total-count'], 0);
  const stranger = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version-outputs`, { token: await foreignToken(server) });
  assert.equal(stranger.status, 404);
});

test('outputs are paged when a page is asked for', async () => {
  const { workspaceId } = await workspaceWithOutputs();
  const page = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version-outputs?page%5Bnumber%5D=2&page%5Bsize%5D=4`);
  assert.equal(page.status, 200, page.text);
  assert.equal(page.json.data.length, 4);
  assert.deepEqual(page.json.meta.pagination, { 'current-page': 2, 'page-size': 4, 'prev-page': 1, 'next-page': 3, 'total-pages': 3, 'total-count': 9 });
  const bad = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version-outputs?page[size]=0`);
  assert.equal(bad.status, 422, bad.text);
});

test('a state without output types gives a null detailed-type, which sends the CLI to the state file', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const old = JSON.stringify({ version: 4, serial: 1, lineage: 'old', outputs: { name: { value: 'x' } }, resources: [] });
  assert.equal((await pushState(server, workspaceId, old)).status, 201);
  const listed = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version-outputs`);
  assert.deepEqual(listed.json.data[0].attributes, { name: 'name', sensitive: false, type: 'string', value: 'x', 'detailed-type': null });
});

test('include=outputs embeds the outputs, as the outputs routes show them, in the current and in any state version', async () => {
  const { workspaceId, stateVersionId } = await workspaceWithOutputs();
  const listed = await server.request('GET', `/api/v2/workspaces/${workspaceId}/current-state-version-outputs`);
  const byId = (items: { id: string }[]) => [...items].sort((a, b) => a.id.localeCompare(b.id));
  for (const url of [`/api/v2/workspaces/${workspaceId}/current-state-version?include=outputs`, `/api/v2/state-versions/${stateVersionId}?include=outputs`]) {
    const read = await server.request('GET', url);
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.data.id, stateVersionId);
    assert.ok(!read.text.includes(secret), 'a sensitive value in included');
    assert.deepEqual(byId(read.json.included), byId(listed.json.data), url);
    const related = (read.json.included as { id: string; type: string }[]).map(({ id, type }) => ({ id, type }));
    assert.deepEqual(byId(read.json.data.relationships.outputs.data), byId(related));
  }
  const plain = await server.request('GET', `/api/v2/state-versions/${stateVersionId}`);
  assert.equal(plain.json.included, undefined, 'nothing is embedded unless asked for');
});

test('an include a state version cannot embed is 400 naming the include parameter', async () => {
  const { workspaceId, stateVersionId } = await workspaceWithOutputs();
  for (const url of [`/api/v2/workspaces/${workspaceId}/current-state-version?include=outputs,no_such`, `/api/v2/state-versions/${stateVersionId}?include=created_by`]) {
    const refused = await server.request('GET', url);
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.errors[0].code, 'invalid_request');
    assert.match(refused.json.errors[0].detail, /include parameter/);
  }
  const run = await server.request('GET', `/api/v2/state-versions/${stateVersionId}?include=run`);
  assert.equal(run.status, 200, run.text);
  assert.equal(run.json.included, undefined, 'a state version pushed by a user has no run to embed');
});
