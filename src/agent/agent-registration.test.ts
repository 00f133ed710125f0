import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RegistrationStore } from './agent-registration.ts';

const registration = { agent_id: 'agent-1', pool_id: 'apool-1', session_token: 'ops_secret', heartbeat_interval_ms: 10_000, lease_timeout_ms: 30_000, poll_timeout_ms: 25_000, pool_kind: 'runner' as const };
const identity = { url: 'https://outpost.example.com', poolToken: 'opp_pool', name: 'vm-1' };

test('a saved registration is given back only to the same agent of the same pool at the same control plane', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-registration-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const store = new RegistrationStore(dataDir);
  assert.equal(await store.load(identity), undefined, 'nothing saved yet');
  await store.save(identity, registration);
  assert.deepEqual(await store.load(identity), registration);
  assert.equal(await store.load({ ...identity, name: 'vm-2' }), undefined);
  assert.equal(await store.load({ ...identity, poolToken: 'opp_other' }), undefined);
  assert.equal(await store.load({ ...identity, url: 'https://elsewhere.example.com' }), undefined);
  const file = path.join(dataDir, 'agent-registration.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600, 'it holds the session token: the agent\'s alone');
  assert.ok(!(await readFile(file, 'utf8')).includes('opp_pool'), 'the pool token is never written');
  await store.remove();
  assert.equal(await store.load(identity), undefined);
});
