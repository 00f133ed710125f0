// Listing state versions, newest first, in TFE's pages: by workspace id, and
// by organization and workspace name (go-tfe StateVersions.List).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { foreignToken, pushState, stateText } from './state-api.test-support.ts';

let server: InProcessServer;
let workspaceId: string;
let workspaceName: string;
before(async () => {
  server = await startInProcessServer();
  workspaceId = (await setupWorkspace(server)).workspaceId;
  workspaceName = (await server.request('GET', `/api/v2/workspaces/${workspaceId}`)).json.data.attributes.name;
  for (let serial = 1; serial <= 5; serial++) assert.equal((await pushState(server, workspaceId, stateText(serial, 'list'))).status, 201);
});
after(async () => {
  await server.close();
});

const byName = (query: string) => `/api/v2/state-versions?filter%5Borganization%5D%5Bname%5D=default&filter%5Bworkspace%5D%5Bname%5D=${workspaceName}${query}`;

test('a workspace\'s state versions come in pages, newest first, with TFE\'s meta and links', async () => {
  const first = await server.request('GET', `/api/v2/workspaces/${workspaceId}/state-versions?page[size]=2`);
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.json.data.map((item: { attributes: { serial: number } }) => item.attributes.serial), [5, 4]);
  assert.deepEqual(first.json.meta.pagination, { 'current-page': 1, 'page-size': 2, 'prev-page': null, 'next-page': 2, 'total-pages': 3, 'total-count': 5 });
  const base = `${server.ctx.publicUrl}/api/v2/workspaces/${workspaceId}/state-versions`;
  assert.equal(first.json.links.next, `${base}?page%5Bsize%5D=2&page%5Bnumber%5D=2`);
  assert.equal(first.json.links.prev, null);
  assert.equal(first.json.links.last, `${base}?page%5Bsize%5D=2&page%5Bnumber%5D=3`);

  const last = await server.request('GET', `/api/v2/workspaces/${workspaceId}/state-versions?page[size]=2&page[number]=3`);
  assert.deepEqual(last.json.data.map((item: { attributes: { serial: number } }) => item.attributes.serial), [1]);
  assert.equal(last.json.meta.pagination['next-page'], null);
  assert.equal(last.json.meta.pagination['prev-page'], 2);
  const beyond = await server.request('GET', `/api/v2/workspaces/${workspaceId}/state-versions?page[number]=9`);
  assert.deepEqual(beyond.json.data, []);

  const whole = await server.request('GET', `/api/v2/workspaces/${workspaceId}/state-versions`);
  assert.equal(whole.json.data.length, 5);
  assert.equal(whole.json.meta.pagination['page-size'], 20);
});

test('go-tfe\'s List finds them by organization and workspace name', async () => {
  const listed = await server.request('GET', byName('&page%5Bnumber%5D=2&page%5Bsize%5D=3'));
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(listed.json.data.map((item: { attributes: { serial: number } }) => item.attributes.serial), [2, 1]);
  assert.equal(listed.json.meta.pagination['total-count'], 5);
  assert.equal(listed.json.data[0].type, 'state-versions');
  assert.match(listed.json.data[0].attributes['hosted-state-download-url'], /\/_signed\/[^/]+\/state-versions\//);
});

test('a list needs both filters, a workspace of the caller\'s organization, and sane page numbers', async () => {
  for (const url of [
    '/api/v2/state-versions',
    `/api/v2/state-versions?filter[workspace][name]=${workspaceName}`,
    '/api/v2/state-versions?filter[organization][name]=default',
    `/api/v2/state-versions?filter[organization][name]=default&filter[workspace][name]=`,
  ]) {
    const refused = await server.request('GET', url);
    assert.equal(refused.status, 422, `${url}: ${refused.text}`);
    assert.equal(refused.json.errors[0].code, 'validation_failed');
  }
  for (const url of [byName('').replace('=default', '=nope'), byName('').replace(`=${workspaceName}`, '=nope')]) {
    const missing = await server.request('GET', url);
    assert.equal(missing.status, 404, `${url}: ${missing.text}`);
  }
  const stranger = await foreignToken(server);
  assert.equal((await server.request('GET', byName(''), { token: stranger })).status, 404);
  assert.equal((await server.request('GET', `/api/v2/workspaces/${workspaceId}/state-versions`, { token: stranger })).status, 404);
  for (const query of ['page[size]=0', 'page[size]=101', 'page[size]=abc', 'page[number]=0', 'page[number]=-1', 'page[number]=1.5']) {
    const bad = await server.request('GET', `/api/v2/workspaces/${workspaceId}/state-versions?${query}`);
    assert.equal(bad.status, 422, `${query}: ${bad.text}`);
    assert.equal(bad.json.errors[0].code, 'validation_failed');
  }
  assert.equal((await server.request('GET', '/api/v2/state-versions', { authorization: '' })).status, 401);
});
