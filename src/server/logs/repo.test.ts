// Reading a window of a long log fetches only the chunks in that window.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { claimAndStart, queueRun, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { insertChunk, readLog } from './repo.ts';

/** Counts the bytes of `data` columns the database hands back. */
class FetchedBytes implements KyselyPlugin {
  bytes = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    for (const row of args.result.rows) if (row.data instanceof Uint8Array) this.bytes += row.data.length;
    return args.result;
  }
}

const chunkSize = 64 * 1024;
const chunks = 200;
let server: InProcessServer;
let runId: string;

before(async () => {
  server = await startInProcessServer();
  const { workspaceId, session } = await setupWorkspace(server);
  runId = await queueRun(server, workspaceId);
  await claimAndStart(server, session);
  // Each chunk is filled with its own index, so any byte tells where it came from.
  for (let i = 0; i < chunks; i++) await insertChunk(server.ctx.db, runId, 'plan', i * chunkSize, Buffer.alloc(chunkSize, i));
});
after(async () => {
  await server.close();
});

async function read(from: number, limit: number): Promise<{ data: Buffer; fetched: number }> {
  const counter = new FetchedBytes();
  const data = await readLog(server.ctx.db.withPlugin(counter), runId, 'plan', from, limit);
  return { data, fetched: counter.bytes };
}

test('a small limit reads a small window, wherever it starts', async () => {
  for (const from of [0, 5, chunkSize * 100 + 7, chunkSize * chunks - 1]) {
    const { data, fetched } = await read(from, 1);
    assert.deepEqual([...data], [Math.floor(from / chunkSize)], `byte ${from}`);
    assert.ok(fetched <= chunkSize, `reading 1 byte at ${from} fetched ${fetched} bytes`);
  }
});

test('a window across chunks is exact and fetches at most one chunk more than asked', async () => {
  const from = chunkSize * 10 + 100;
  const limit = chunkSize * 3;
  const { data, fetched } = await read(from, limit);
  assert.equal(data.length, limit);
  assert.equal(data[0], 10);
  assert.equal(data[limit - 1], 13);
  assert.equal(data.indexOf(11), chunkSize - 100);
  assert.ok(fetched <= limit + chunkSize, `fetched ${fetched} bytes for a ${limit}-byte window`);
});

test('reading at or past the end gives nothing; the whole log reads back whole', async () => {
  assert.equal((await read(chunkSize * chunks, 10)).data.length, 0);
  assert.equal((await read(chunkSize * chunks + 5, 10)).data.length, 0);
  const all = await read(0, chunkSize * chunks * 2);
  assert.equal(all.data.length, chunkSize * chunks);
  assert.equal(all.data[chunkSize * chunks - 1], chunks - 1);
});
