import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FilesystemBlobStore } from '../blobs/blob-store.ts';
import { openDatabase } from './database.ts';

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

test('the embedded database and its data dir are private to the server user', async (t) => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'outpost-db-'));
  t.after(() => rm(parent, { recursive: true, force: true }));
  const dataDir = path.join(parent, 'server');
  const db = await openDatabase({ dataDir });
  await db.close();
  assert.equal(await modeOf(dataDir), 0o700);
  assert.equal(await modeOf(path.join(dataDir, 'outpost.db')), 0o600);
});

test('a database an older version created with the umask modes is made private', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-db-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  await chmod(dataDir, 0o755);
  await writeFile(path.join(dataDir, 'outpost.db'), '', { mode: 0o644 });
  const db = await openDatabase({ dataDir });
  await db.close();
  assert.equal(await modeOf(dataDir), 0o700);
  assert.equal(await modeOf(path.join(dataDir, 'outpost.db')), 0o600);
});

test('blobs (state files, plans) are written private to the server user', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-blobs-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const root = path.join(dataDir, 'blobs');
  await new FilesystemBlobStore(root).put('state/ws-1/sv-1.tfstate', Buffer.from('{}'));
  assert.equal(await modeOf(root), 0o700);
  assert.equal(await modeOf(path.join(root, 'state')), 0o700);
  assert.equal(await modeOf(path.join(root, 'state/ws-1')), 0o700);
  assert.equal(await modeOf(path.join(root, 'state/ws-1/sv-1.tfstate')), 0o600);
});
