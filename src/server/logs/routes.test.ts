// A log follower ends when its client goes away, even one that stopped
// reading first (its stream never drains again).
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { claimAndStart, queueRun, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { insertChunk } from './repo.ts';

// The server's own log says when a follow handler has returned.
const ended: { run: string; client_gone: boolean }[] = [];
const logSink = new Writable({
  write(line: Buffer, _encoding, done) {
    const entry = JSON.parse(line.toString()) as { msg: string; run: string; client_gone: boolean };
    if (entry.msg === 'log follow ended') ended.push(entry);
    done();
  },
});

let server: InProcessServer;
let port: number;
before(async () => {
  server = await startInProcessServer({}, logSink);
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  port = (server.app.server.address() as net.AddressInfo).port;
});
after(async () => {
  await server.close();
});

/** A run still planning, with a log far larger than any socket buffer. */
async function runWithLongLog(): Promise<string> {
  const { workspaceId, session } = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId);
  await claimAndStart(server, session);
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  for (let i = 0; i < 40; i++) await insertChunk(server.ctx.db, runId, 'plan', i * chunk.length, chunk);
  return runId;
}

/** Follows the plan log, reads `reads` chunks of the response, then stops reading and disconnects. */
function followAndLeave(runId: string, reads: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET /api/v2/plans/${runId.replace('run-', 'plan-')}/logs?follow=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.adminToken}\r\n\r\n`);
    });
    let seen = 0;
    socket.on('data', () => {
      if (++seen < reads) return;
      socket.pause();
      // Let the server fill the socket buffers and block on them, then leave.
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 300);
    });
    socket.on('error', reject);
  });
}

async function waitForEnd(runId: string): Promise<{ client_gone: boolean }> {
  for (let waited = 0; waited < 5_000; waited += 50) {
    const entry = ended.find((e) => e.run === runId);
    if (entry) return entry;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail('the follow handler is still running after its client disconnected');
}

test('a follower that read one chunk and disconnected is let go', async () => {
  const runId = await runWithLongLog();
  await followAndLeave(runId, 1);
  assert.equal((await waitForEnd(runId)).client_gone, true);
});

test('a follower that read a while and disconnected is let go', async () => {
  const runId = await runWithLongLog();
  await followAndLeave(runId, 50);
  assert.equal((await waitForEnd(runId)).client_gone, true);
});
