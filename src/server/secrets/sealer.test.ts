import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadSealingKey, SecretSealer } from './sealer.ts';

test('a sealed value opens with the same key, hides the plain text, and differs every time', () => {
  const sealer = new SecretSealer(randomBytes(32));
  const sealed = sealer.seal('hunter2 and more');
  assert.match(sealed, /^sealed:v1:/);
  assert.ok(!sealed.includes('hunter2'));
  assert.notEqual(sealer.seal('hunter2 and more'), sealed);
  assert.equal(sealer.open(sealed), 'hunter2 and more');
  assert.equal(sealer.open('stored before sealing'), 'stored before sealing');
});

test('another key, or a tampered value, does not open', () => {
  const sealed = new SecretSealer(randomBytes(32)).seal('secret');
  assert.throws(() => new SecretSealer(randomBytes(32)).open(sealed), /OUTPOST_ENCRYPTION_KEY/);
  const sealer = new SecretSealer(randomBytes(32));
  const value = sealer.seal('secret');
  const tampered = value.slice(0, -4) + (value.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  assert.throws(() => sealer.open(tampered));
});

test('without a configured key one is generated once, kept 0600 in the data dir, and reused', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-key-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const first = await loadSealingKey(undefined, dir);
  assert.equal(first.length, 32);
  assert.deepEqual(await loadSealingKey(undefined, dir), first);
  assert.equal((await stat(path.join(dir, 'encryption.key'))).mode & 0o777, 0o600);
  const configured = randomBytes(32);
  assert.deepEqual(await loadSealingKey(configured, dir), configured);
});
