import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { createTestDatabase, postgresUrl } from '../../../test/support/postgres.ts';
import { waitUntil } from '../../../test/support/waits.ts';
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

test('PostgreSQL ending idle pool connections is reported and the next query opens a new one', { skip: postgresUrl() === undefined && 'PostgreSQL is not configured' }, async (t) => {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-db-'));
  const reported: Error[] = [];
  const db = await openDatabase({ dataDir, databaseUrl: database.url, onIdleConnectionError: (error) => reported.push(error) });
  t.after(async () => {
    await db.close();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  });
  // Several idle connections in the pool, then an administrator ends them all.
  await Promise.all([1, 2, 3].map(() => sql`SELECT pg_sleep(0.05)`.execute(db.kysely)));
  const admin = new pg.Client({ connectionString: postgresUrl() });
  await admin.connect();
  let ended: number;
  try {
    ended = (await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database.name])).rowCount ?? 0;
  } finally {
    await admin.end();
  }
  assert.ok(ended > 0, 'no connection of the pool was open');
  // Each pooled connection hears of its end on its own; a query before the
  // last one has may still be handed that connection.
  await waitUntil('the pool to report every ended connection', async () => (reported.length >= ended ? true : undefined), () => `${reported.length} of ${ended} reported`, 10_000);
  assert.match(reported[0]!.message, /terminating connection/);
  const { rows } = await sql<{ answer: number }>`SELECT 42 AS answer`.execute(db.kysely);
  assert.equal(rows[0]!.answer, 42);
});

