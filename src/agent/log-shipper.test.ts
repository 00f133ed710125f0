import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mock, test } from 'node:test';
import { pino } from 'pino';
import type { ControlPlaneClient } from './control-plane-client.ts';
import { LogShipper } from './log-shipper.ts';

const MiB = 1024 * 1024;

/** The server's side of the log protocol: append at an offset, ignore bytes it already has. */
class FakeServer {
  readonly parts: Buffer[] = [];
  size = 0;
  requests = 0;
  latencyMs = 0;
  /** Decides per request: 'ok', 'fail' (never arrives), 'lost' (stored, but the answer is lost). */
  fault: () => 'ok' | 'fail' | 'lost' = () => 'ok';

  readonly client = {
    appendLog: async (_session: string, _job: string, _lease: string, offset: number, data: Buffer): Promise<number> => {
      this.requests++;
      assert.ok(data.length <= MiB, `a request of ${data.length} bytes`);
      if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
      const fault = this.fault();
      if (fault === 'fail') throw new Error('connection reset');
      assert.ok(offset <= this.size, `offset ${offset} skips past ${this.size}`);
      const fresh = data.subarray(this.size - offset);
      this.parts.push(Buffer.from(fresh));
      this.size += fresh.length;
      if (fault === 'lost') throw new Error('timed out');
      return this.size;
    },
  } as unknown as ControlPlaneClient;

  text(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function shipper(server: FakeServer): LogShipper {
  return new LogShipper({ client: server.client, session: 's', jobId: 'j', leaseId: 'l', startOffset: 0, logger: pino({ level: 'silent' }) });
}

/** Distinct content per write, so a lost, duplicated or reordered byte shows. */
function block(index: number, size: number): Buffer {
  const data = Buffer.alloc(size, 97 + (index % 26));
  data.write(`<${index}>`);
  return data;
}

test('50 MiB of output ships back to back, not one chunk per 200 ms tick, and is copied once', async () => {
  const server = new FakeServer();
  server.latencyMs = 2;
  const log = shipper(server);
  const written: Buffer[] = [];
  let copied = 0;
  const concat = Buffer.concat;
  Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
    const joined = concat(list, length);
    copied += joined.length;
    return joined;
  }) as typeof Buffer.concat;
  const started = Date.now();
  try {
    for (let index = 0; index < 800; index++) {
      written.push(block(index, 64 * 1024));
      log.write(written.at(-1)!);
      if (index % 16 === 15) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await log.close();
  } finally {
    Buffer.concat = concat;
  }
  const elapsed = Date.now() - started;
  // At one chunk per tick, 50 MiB needed 50 ticks: 10 s.
  assert.ok(elapsed < 5_000, `took ${elapsed} ms`);
  assert.ok(server.requests < 250, `${server.requests} requests`);
  assert.ok(server.text().equals(concat(written)), 'the log arrived exactly as written');
  assert.ok(copied <= 50 * MiB * 1.1, `${copied / MiB} MiB copied to send 50 MiB`);
});

test('no byte is lost or duplicated across failed and half-failed (answer lost) requests', async () => {
  const server = new FakeServer();
  let request = 0;
  server.fault = () => (['ok', 'fail', 'ok', 'lost', 'ok', 'ok', 'fail', 'lost'] as const)[request++ % 8]!;
  const log = shipper(server);
  const written: Buffer[] = [];
  for (let index = 0; index < 300; index++) {
    written.push(block(index, 1 + ((index * 7919) % (100 * 1024))));
    log.write(written.at(-1)!);
    if (index % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  log.line('Error: the last line');
  await log.close();
  assert.ok(server.text().equals(Buffer.concat([...written, Buffer.from('Error: the last line\n')])), 'the log arrived exactly as written');
  assert.equal(log.buffered, 0);
});

test('the backlog is bounded: its start and its most recent end are kept, with a line saying what was dropped', async () => {
  const server = new FakeServer();
  let down = true;
  server.fault = () => (down ? 'fail' : 'ok');
  const log = shipper(server);
  const written: Buffer[] = [];
  for (let index = 0; index < 200; index++) {
    written.push(block(index, MiB));
    log.write(written.at(-1)!);
    assert.ok(log.buffered <= 65 * MiB, `${log.buffered / MiB} MiB held in memory`);
  }
  down = false;
  await log.close();
  const all = Buffer.concat(written);
  const text = server.text();
  const marker = `\n[outpost agent] ${all.length - 64 * MiB} bytes of output were dropped here: the job wrote faster than the control plane accepted its log\n`;
  assert.ok(text.subarray(0, 32 * MiB).equals(all.subarray(0, 32 * MiB)), 'the start is kept');
  assert.equal(text.subarray(32 * MiB, 32 * MiB + marker.length).toString(), marker);
  assert.ok(text.subarray(32 * MiB + marker.length).equals(all.subarray(all.length - 32 * MiB)), 'the most recent end is kept');
});

test('a close that cannot ship the whole backlog in time still ships its end (the error line)', async () => {
  const server = new FakeServer();
  server.latencyMs = 100;
  const log = shipper(server);
  for (let index = 0; index < 40; index++) log.write(block(index, MiB));
  log.line('Error: what went wrong');
  await log.close(3_000);
  const text = server.text().toString();
  assert.ok(text.includes('bytes of output were dropped here'), 'a line says what was dropped');
  assert.ok(text.endsWith('Error: what went wrong\n'), text.slice(-200));
  assert.equal(log.buffered, 0);
});

test('onDelivered counts each confirmed byte once, even when answers are lost and chunks resent', async () => {
  const server = new FakeServer();
  let requests = 0;
  server.fault = () => (++requests % 3 === 0 ? 'lost' : requests % 5 === 0 ? 'fail' : 'ok');
  let delivered = 0;
  const log = new LogShipper({
    client: server.client,
    session: 's',
    jobId: 'j',
    leaseId: 'l',
    startOffset: 0,
    logger: pino({ level: 'silent' }),
    onDelivered: (bytes) => (delivered += bytes),
  });
  for (let i = 0; i < 20; i++) log.write(block(i, 100 * 1024));
  await log.close();
  assert.equal(server.size, 20 * 100 * 1024);
  assert.equal(delivered, server.size);
});

function spillingShipper(server: FakeServer, spillFile: string, limits: { memory: number; spill: number }): LogShipper {
  return new LogShipper({
    client: server.client,
    session: 's',
    jobId: 'j',
    leaseId: 'l',
    startOffset: 0,
    logger: pino({ level: 'silent' }),
    spillFile,
    memoryLimitBytes: limits.memory,
    spillLimitBytes: limits.spill,
  });
}

test('output beyond the memory bound spills to a file and is replayed in order, with no gap and no duplicate', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'log-spill-'));
  try {
    const server = new FakeServer();
    let down = true;
    server.fault = () => (down ? 'fail' : 'ok');
    const spillFile = path.join(dir, 'job.log-spill');
    const log = spillingShipper(server, spillFile, { memory: MiB, spill: 64 * MiB });
    const written: Buffer[] = [];
    for (let index = 0; index < 400; index++) {
      written.push(block(index, 50 * 1024 + index));
      log.write(written.at(-1)!);
      assert.ok(log.buffered <= MiB, `${log.buffered} bytes held in memory`);
    }
    assert.ok(log.spilled > 15 * MiB, `${log.spilled} bytes spilled`);
    assert.ok(existsSync(spillFile), 'the spill file is where the agent put it');
    down = false;
    await log.close();
    assert.ok(server.text().equals(Buffer.concat(written)), 'the log arrived exactly as written');
    assert.equal(existsSync(spillFile), false, 'the spill file is removed once the log is closed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a server that is down is retried with backoff, not every tick, and close() waits for it within its outage budget', async () => {
  const server = new FakeServer();
  let down = true;
  server.fault = () => (down ? 'fail' : 'ok');
  const log = shipper(server);
  log.line('before the outage');
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  // One try per 200 ms tick would be 15.
  assert.ok(server.requests <= 8, `${server.requests} requests in 3 s`);
  log.line('the last line');
  setTimeout(() => (down = false), 2_000);
  // Its own timeout (1 s) runs only while the server answers.
  await log.close(1_000, 30_000);
  assert.equal(server.text().toString(), 'before the outage\nthe last line\n');
});

test('a line goes out when it is written, not at the next tick; lines arriving meanwhile go in the next request', async (t) => {
  // With timers frozen, only a send made at write time can deliver the first line.
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  t.after(() => mock.timers.reset());
  const server = new FakeServer();
  const log = shipper(server);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  log.line('first');
  await settle();
  assert.equal(server.text().toString(), 'first\n');
  // Within the least gap between sends: the next lines wait for it, together.
  log.line('second');
  log.line('third');
  await settle();
  assert.equal(server.requests, 1);
  mock.timers.tick(25);
  await settle();
  assert.equal(server.text().toString(), 'first\nsecond\nthird\n');
  assert.equal(server.requests, 2, 'the two lines went in one request');
  mock.timers.reset();
  await log.close();
});
