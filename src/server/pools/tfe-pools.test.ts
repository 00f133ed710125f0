// The agent pool, pool token and agent endpoints as go-tfe uses them:
// pagination, the pool query, renaming, reading one token, the last-ping
// filter and `include=workspaces`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerAgent, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { foreignToken } from '../state/state-api.test-support.ts';

describe('agent pools as TFE serves them', () => {
  let server: InProcessServer;
  before(async () => {
    server = await startInProcessServer();
  });
  after(() => server.close());

  const createPool = async (name: string, kind?: string) => {
    const res = await server.request('POST', '/api/v2/organizations/default/agent-pools', { json: { data: { type: 'agent-pools', attributes: { name, ...(kind ? { kind } : {}) } } } });
    assert.equal(res.status, 201, res.text);
    return res.json.data as { id: string; attributes: { name: string } };
  };
  const createToken = async (poolId: string, description: string) => {
    const res = await server.request('POST', `/api/v2/agent-pools/${poolId}/authentication-tokens`, { json: { data: { type: 'authentication-tokens', attributes: { description } } } });
    assert.equal(res.status, 201, res.text);
    return res.json.data as { id: string; attributes: { token: string } };
  };
  const rename = (poolId: string, attributes: Record<string, unknown>) => server.request('PATCH', `/api/v2/agent-pools/${poolId}`, { json: { data: { type: 'agent-pools', attributes } } });

  it('pages the organizations', async () => {
    const res = await server.request('GET', '/api/v2/organizations');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.data.map((org: { id: string }) => org.id), ['default']);
    assert.equal(res.json.meta.pagination['total-count'], 1);
    assert.equal(res.json.links.next, null);
  });

  it('pages the pools and filters them by q, ignoring case', async () => {
    await createPool('QueryAlpha');
    await createPool('queryBeta');
    await createPool('other-q');
    const first = await server.request('GET', '/api/v2/organizations/default/agent-pools?q=QUERY&page[size]=1');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.json.data.map((pool: { attributes: { name: string } }) => pool.attributes.name), ['QueryAlpha']);
    assert.equal(first.json.meta.pagination['total-count'], 2);
    assert.equal(first.json.meta.pagination['next-page'], 2);
    assert.match(first.json.links.next, /page%5Bnumber%5D=2/);
    const second = await server.request('GET', '/api/v2/organizations/default/agent-pools?q=query&page[size]=1&page[number]=2');
    assert.deepEqual(second.json.data.map((pool: { attributes: { name: string } }) => pool.attributes.name), ['queryBeta']);
    const all = await server.request('GET', '/api/v2/organizations/default/agent-pools');
    assert.ok(all.json.meta.pagination['total-count'] >= 3);
  });

  it('renames a pool, keeping names unique and the kind fixed', async () => {
    const pool = await createPool('to-rename');
    await createPool('taken-name');
    const renamed = await rename(pool.id, { name: 'renamed-pool', 'organization-scoped': true });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.json.data.attributes.name, 'renamed-pool');
    assert.equal((await server.request('GET', `/api/v2/agent-pools/${pool.id}`)).json.data.attributes.name, 'renamed-pool');
    const taken = await rename(pool.id, { name: 'taken-name' });
    assert.equal(taken.status, 409, taken.text);
    assert.equal(taken.json.errors[0].code, 'already_exists');
    assert.equal((await rename(pool.id, { name: 'bad name!' })).status, 422);
    const kind = await rename(pool.id, { kind: 'vcs' });
    assert.equal(kind.status, 422, kind.text);
    assert.equal(kind.json.errors[0].code, 'validation_failed');
    assert.equal((await rename(pool.id, { kind: 'runner' })).status, 200, 'the same kind is no change');
    const wrongType = await server.request('PATCH', `/api/v2/agent-pools/${pool.id}`, { json: { data: { type: 'workspaces', attributes: { name: 'x' } } } });
    assert.equal(wrongType.status, 422);
    const stranger = await foreignToken(server);
    assert.equal((await server.request('PATCH', `/api/v2/agent-pools/${pool.id}`, { token: stranger, json: { data: { type: 'agent-pools', attributes: { name: 'mine' } } } })).status, 404);
  });

  it('pages a pool\'s tokens and reads one, only in its own organization', async () => {
    const pool = await createPool('token-pool');
    const first = await createToken(pool.id, 'first');
    const second = await createToken(pool.id, 'second');
    const pageOf = (number: number) => server.request('GET', `/api/v2/agent-pools/${pool.id}/authentication-tokens?page[size]=1&page[number]=${number}`);
    const page = await pageOf(1);
    assert.equal(page.status, 200, page.text);
    assert.equal(page.json.meta.pagination['total-count'], 2);
    assert.equal(page.json.data[0].attributes.token, undefined, 'no secret in a list');
    const both = [page.json.data[0].id, (await pageOf(2)).json.data[0].id];
    assert.deepEqual(both.sort(), [first.id, second.id].sort());

    const read = await server.request('GET', `/api/v2/authentication-tokens/${first.id}`);
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.data.attributes.description, 'first');
    assert.equal(read.json.data.attributes.token, undefined, 'no secret on read');
    assert.equal(read.json.data.relationships['agent-pool'].data.id, pool.id);
    const stranger = await foreignToken(server);
    assert.equal((await server.request('GET', `/api/v2/authentication-tokens/${first.id}`, { token: stranger })).status, 404);
    assert.equal((await server.request('DELETE', `/api/v2/authentication-tokens/${first.id}`, { token: stranger })).status, 404);
    assert.equal((await server.request('GET', '/api/v2/authentication-tokens/at-unknown')).status, 404);

    // Revoked tokens stay listed and readable, marked revoked (docs/api.md; `outpost pool token list` shows them).
    assert.equal((await server.request('DELETE', `/api/v2/authentication-tokens/${first.id}`)).status, 204);
    assert.ok((await server.request('GET', `/api/v2/authentication-tokens/${first.id}`)).json.data.attributes['revoked-at']);
  });

  it('pages a pool\'s agents and filters them by last ping', async () => {
    const { workspaceId, poolToken } = await setupWorkspace(server);
    const poolId = (await server.request('GET', `/api/v2/workspaces/${workspaceId}`)).json.data.relationships['agent-pool'].data.id as string;
    await registerAgent(server, poolToken);
    const agents = `/api/v2/agent-pools/${poolId}/agents`;
    const page = await server.request('GET', `${agents}?page[size]=1`);
    assert.equal(page.status, 200, page.text);
    assert.equal(page.json.data.length, 1);
    assert.equal(page.json.meta.pagination['total-count'], 2);

    const silentId = page.json.data[0].id as string;
    await server.ctx.db.updateTable('agents').set({ last_seen_at: Date.now() - 2 * 3_600_000 }).where('id', '=', silentId).execute();
    const since = (ms: number) => `${agents}?filter%5Blast-ping-since%5D=${encodeURIComponent(new Date(ms).toISOString().replace(/\.\d+Z$/, '+00:00'))}`;
    const recent = await server.request('GET', since(Date.now() - 3_600_000));
    assert.equal(recent.status, 200, recent.text);
    assert.equal(recent.json.data.length, 1);
    assert.notEqual(recent.json.data[0].id, silentId);
    assert.equal((await server.request('GET', since(Date.now() - 3 * 3_600_000))).json.data.length, 2);
    assert.equal((await server.request('GET', since(Date.now() + 3_600_000))).json.data.length, 0);
    const bad = await server.request('GET', `${agents}?filter%5Blast-ping-since%5D=yesterday`);
    assert.equal(bad.status, 422, bad.text);
  });

  it('relates a pool to its workspaces and includes them on request', async () => {
    const { workspaceId } = await setupWorkspace(server);
    const poolId = (await server.request('GET', `/api/v2/workspaces/${workspaceId}`)).json.data.relationships['agent-pool'].data.id as string;
    const plain = await server.request('GET', `/api/v2/agent-pools/${poolId}`);
    assert.equal(plain.status, 200, plain.text);
    assert.deepEqual(plain.json.data.relationships.workspaces.data, [{ id: workspaceId, type: 'workspaces' }]);
    assert.equal(plain.json.included, undefined);

    const included = await server.request('GET', `/api/v2/agent-pools/${poolId}?include=workspaces`);
    assert.equal(included.status, 200, included.text);
    assert.deepEqual(included.json.included.map((ws: { id: string; type: string }) => [ws.type, ws.id]), [['workspaces', workspaceId]]);
    assert.ok(included.json.included[0].attributes.name);

    const listed = await server.request('GET', '/api/v2/organizations/default/agent-pools');
    const pool = listed.json.data.find((row: { id: string }) => row.id === poolId);
    assert.deepEqual(pool.relationships.workspaces.data, [{ id: workspaceId, type: 'workspaces' }]);

    const unknown = await server.request('GET', `/api/v2/agent-pools/${poolId}?include=agents`);
    assert.equal(unknown.status, 400, unknown.text);
    assert.equal(unknown.json.errors[0].code, 'invalid_request');
    assert.match(unknown.json.errors[0].detail, /include parameter/);
  });
});
