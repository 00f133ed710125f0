// Bad input to version control's entry points: provider and link settings
// that cannot work, and the VCS relay of the agent protocol called by the
// wrong agent, for a task it does not hold, or with a malformed body. Each
// is refused with a sentence and a stable code, and changes nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPool, createWorkspace } from '../support/api-calls.ts';
import { startServer, type ServerHandle } from '../support/cluster.ts';

interface Refusal {
  status: number;
  code: string;
  detail: string;
}

async function call(server: ServerHandle, method: string, path: string, init: { token?: string; body?: unknown; raw?: Buffer; headers?: Record<string, string> } = {}): Promise<Refusal & { body: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? server.adminToken}`, ...init.headers };
  let body: string | Uint8Array | undefined;
  if (init.raw) {
    headers['content-type'] = 'application/octet-stream';
    body = new Uint8Array(init.raw);
  } else if (init.body !== undefined) {
    headers['content-type'] = 'application/vnd.api+json';
    body = JSON.stringify(init.body);
  }
  const response = await fetch(`${server.url}${path}`, { method, headers, body });
  const text = await response.text();
  const error = (text ? (JSON.parse(text) as { errors?: { code: string; detail: string }[] }) : {}).errors?.[0];
  return { status: response.status, code: error?.code ?? '', detail: error?.detail ?? '', body: text };
}

async function register(server: ServerHandle, token: string): Promise<string> {
  const response = await fetch(`${server.url}/api/agent/v1/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `agent-${Math.random()}`, version: 'test', driver: 'local', concurrency: 1 }),
  });
  assert.equal(response.status, 201);
  return ((await response.json()) as { session_token: string; pool_kind: string }).session_token;
}

const provider = (attributes: Record<string, unknown>) => ({ data: { type: 'vcs-providers', attributes } });

test('provider and repository settings that cannot work are refused with a sentence and a code', async (t) => {
  const server = await startServer({ backend: 'sqlite', t });
  const runners = await createPool(server, 'runners');
  const workspace = await createWorkspace(server, { poolId: runners.id });
  const cases: [string, string, string, unknown, number, string, RegExp][] = [
    ['unknown kind', 'POST', '/api/v2/organizations/default/vcs-providers', provider({ name: 'a', kind: 'svn' }), 422, 'validation_failed', /kind/],
    ['forge without its URL', 'POST', '/api/v2/organizations/default/vcs-providers', provider({ name: 'a', kind: 'github' }), 422, 'validation_failed', /http-url/],
    ['a cloud metadata address', 'POST', '/api/v2/organizations/default/vcs-providers', provider({ name: 'a', kind: 'gitea', 'http-url': 'http://169.254.169.254' }), 422, 'validation_failed', /link-local|169\.254/],
    ['a runner pool to relay', 'POST', '/api/v2/organizations/default/vcs-providers', provider({ name: 'a', kind: 'gitea', 'http-url': 'http://gitea.internal', 'agent-pool-id': runners.id }), 422, 'validation_failed', /kind vcs/],
    ['an SSH key for a forge', 'POST', '/api/v2/organizations/default/vcs-providers', provider({ name: 'a', kind: 'gitlab', 'http-url': 'https://gitlab.example.com', 'ssh-key': 'k' }), 422, 'validation_failed', /SSH key/],
    ['an unknown provider', 'GET', '/api/v2/vcs-providers/vcs-nope', undefined, 404, 'not_found', /vcs-nope/],
    ['a link to an unknown provider', 'PATCH', `/api/v2/workspaces/${workspace.id}`, { data: { type: 'workspaces', attributes: { 'vcs-repo': { identifier: 'a/b', 'vcs-provider-id': 'vcs-nope' } } } }, 404, 'not_found', /vcs-nope/],
    ['a link without a provider', 'PATCH', `/api/v2/workspaces/${workspace.id}`, { data: { type: 'workspaces', attributes: { 'vcs-repo': { identifier: 'a/b' } } } }, 422, 'validation_failed', /vcs-provider-id/],
    ['trigger patterns without a link', 'PATCH', `/api/v2/workspaces/${workspace.id}`, { data: { type: 'workspaces', attributes: { 'trigger-patterns': ['a/**'] } } }, 422, 'validation_failed', /not linked/],
    ['a bad tags regex', 'PATCH', `/api/v2/workspaces/${workspace.id}`, { data: { type: 'workspaces', attributes: { 'vcs-repo': { identifier: 'a/b', 'tags-regex': '(' } } } }, 422, 'validation_failed', /regular expression/],
  ];
  for (const [what, method, path, body, status, code, detail] of cases) {
    const answer = await call(server, method, path, { body });
    assert.equal(answer.status, status, `${what}: ${answer.body}`);
    assert.equal(answer.code, code, what);
    assert.match(answer.detail || answer.body, detail, what);
  }
  const gitea = await call(server, 'POST', '/api/v2/organizations/default/vcs-providers', { body: provider({ name: 'gitea', kind: 'gitea', 'http-url': 'http://gitea.internal', token: 't' }) });
  assert.equal(gitea.status, 201);
  const providerId = (JSON.parse(gitea.body) as { data: { id: string } }).data.id;
  const badRepo = await call(server, 'PATCH', `/api/v2/workspaces/${workspace.id}`, { body: { data: { type: 'workspaces', attributes: { 'vcs-repo': { identifier: '../etc', 'vcs-provider-id': providerId } } } } });
  assert.deepEqual([badRepo.status, badRepo.code], [422, 'validation_failed']);
  // Nothing was linked by the refusals.
  const shown = JSON.parse((await call(server, 'GET', `/api/v2/workspaces/${workspace.id}`)).body) as { data: { attributes: Record<string, unknown> } };
  assert.equal(shown.data.attributes['vcs-repo'], null);
  // A provider in use stays; so does a pool that relays.
  await call(server, 'PATCH', `/api/v2/workspaces/${workspace.id}`, { body: { data: { type: 'workspaces', attributes: { 'vcs-repo': { identifier: 'team/infra', 'vcs-provider-id': providerId } } } } });
  assert.deepEqual((await call(server, 'DELETE', `/api/v2/vcs-providers/${providerId}`)).code, 'conflict');
});

test('the VCS relay refuses runner agents, tasks the agent does not hold and malformed bodies', async (t) => {
  const server = await startServer({ backend: 'sqlite', t });
  const relays = await createPool(server, 'relays', 'vcs');
  const runners = await createPool(server, 'runners');
  const relay = await register(server, relays.token);
  const runner = await register(server, runners.token);
  const poll = (token: string, body: unknown) => call(server, 'POST', '/api/agent/v1/vcs/poll', { token, body });

  assert.deepEqual(Object.values(await poll(runner, { wait_ms: 0 })).slice(0, 2), [403, 'forbidden']);
  assert.deepEqual(Object.values(await poll('ops_notavalidsessiontoken000000000000000000', { wait_ms: 0 })).slice(0, 2), [401, 'token_invalid']);
  assert.deepEqual(Object.values(await poll(relay, { wait_ms: 'soon' })).slice(0, 2), [422, 'validation_failed']);
  const empty = await poll(relay, { wait_ms: 0 });
  assert.equal(empty.status, 200);
  assert.deepEqual(JSON.parse(empty.body), { tasks: [] });

  const notHeld = await call(server, 'POST', '/api/agent/v1/vcs/tasks/vcsk-unknown/result', { token: relay, body: { outcome: 'posted' } });
  assert.deepEqual([notHeld.status, notHeld.code], [409, 'lease_stale']);
  const badResult = await call(server, 'POST', '/api/agent/v1/vcs/tasks/vcsk-unknown/result', { token: relay, body: { outcome: 'exploded' } });
  assert.deepEqual([badResult.status, badResult.code], [422, 'validation_failed']);
  const archive = await call(server, 'PUT', '/api/agent/v1/vcs/tasks/vcsk-unknown/archive', { token: relay, raw: Buffer.from('not gzip') });
  assert.deepEqual([archive.status, archive.code], [409, 'lease_stale']);

  const forwarded = (headers: Record<string, string>) => call(server, 'POST', '/api/agent/v1/vcs/providers/vcs-unknown/webhook', { token: relay, raw: Buffer.from('{}'), headers });
  assert.deepEqual(Object.values(await forwarded({})).slice(0, 2), [400, 'invalid_request']);
  assert.deepEqual(Object.values(await forwarded({ 'outpost-forwarded-headers': 'not base64 json' })).slice(0, 2), [400, 'invalid_request']);
  const unknown = await forwarded({ 'outpost-forwarded-headers': Buffer.from(JSON.stringify({ 'x-gitea-event': 'push' })).toString('base64') });
  assert.deepEqual([unknown.status, unknown.code], [404, 'not_found']);
});

test('a task whose VCS agent left mid-task goes to another agent of the pool; the first one can no longer report it', async (t) => {
  const server = await startServer({ backend: 'sqlite', t, env: { OUTPOST_VCS_INTERVAL: '200ms' } });
  const relays = await createPool(server, 'relays', 'vcs');
  const runners = await createPool(server, 'runners');
  const workspace = await createWorkspace(server, { poolId: runners.id });
  const created = await call(server, 'POST', '/api/v2/organizations/default/vcs-providers', {
    body: provider({ name: 'inside', kind: 'git', 'agent-pool-id': relays.id, 'poll-interval': 0 }),
  });
  const providerId = (JSON.parse(created.body) as { data: { id: string } }).data.id;
  // No branch: a look at the repository's refs is queued for the pool.
  await call(server, 'PATCH', `/api/v2/workspaces/${workspace.id}`, {
    body: { data: { type: 'workspaces', attributes: { 'vcs-repo': { identifier: 'https://git.internal.example/infra.git', 'vcs-provider-id': providerId } } } },
  });
  const first = await register(server, relays.token);
  const taken = JSON.parse((await call(server, 'POST', '/api/agent/v1/vcs/poll', { token: first, body: { wait_ms: 10_000 } })).body) as { tasks: { task_id: string; kind: string }[] };
  assert.deepEqual(taken.tasks.map((task) => task.kind), ['refs']);
  const taskId = taken.tasks[0]!.task_id;

  // The first agent goes away (as a killed one is marked offline after a lease timeout).
  assert.equal((await call(server, 'POST', '/api/agent/v1/deregister', { token: first, body: {} })).status, 204);
  const second = await register(server, relays.token);
  const retaken = JSON.parse((await call(server, 'POST', '/api/agent/v1/vcs/poll', { token: second, body: { wait_ms: 10_000 } })).body) as { tasks: { task_id: string }[] };
  assert.deepEqual(retaken.tasks.map((task) => task.task_id), [taskId]);
  const late = await call(server, 'POST', `/api/agent/v1/vcs/tasks/${taskId}/result`, { token: first, body: { outcome: 'posted' } });
  assert.equal(late.status, 401, 'the departed agent\'s session is gone');
  const answered = await call(server, 'POST', `/api/agent/v1/vcs/tasks/${taskId}/result`, { token: second, body: { outcome: 'refs', head: 'trunk', refs: { 'refs/heads/trunk': 'a'.repeat(40) } } });
  assert.equal(answered.status, 204, answered.body);
  const shown = JSON.parse((await call(server, 'GET', `/api/v2/workspaces/${workspace.id}`)).body) as { data: { attributes: { 'vcs-repo': { branch: string } } } };
  assert.equal(shown.data.attributes['vcs-repo'].branch, 'trunk');
});
