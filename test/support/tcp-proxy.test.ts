// Proves the partition proxy does what the fault tests rely on: it forwards;
// cut() resets established connections; blackholed requests get no answer
// until restore() and then reach the server intact; `refuse` resets new ones.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TcpProxy } from './tcp-proxy.ts';

async function echoServer(t: Parameters<typeof TcpProxy.start>[0]): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = http.createServer((request, response) => {
    seen.push(`${request.method ?? ''} ${request.url ?? ''}`);
    response.end(`answer to ${request.url ?? ''}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

/** A request on a fresh connection: no pooling, so each one shows how the proxy treats new connections. */
function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

test('the proxy forwards, holds blackholed requests until restore() delivers them, and refuses in refuse mode', async (t) => {
  const upstream = await echoServer(t);
  const proxy = await TcpProxy.start(t, upstream.port);
  assert.equal(await get(`${proxy.url}/before`), 'answer to /before');

  proxy.cut();
  let settled = false;
  const late = get(`${proxy.url}/late`).finally(() => {
    settled = true;
  });
  for (let i = 0; i < 100 && proxy.heldRequestLines().length === 0; i++) await sleep(20);
  assert.deepEqual(proxy.heldRequestLines(), ['GET /late HTTP/1.1']);
  await sleep(200);
  assert.equal(settled, false, 'a blackholed request is not answered');
  assert.deepEqual(upstream.seen, ['GET /before'], 'nothing reached the server during the cut');

  proxy.restore();
  assert.equal(await late, 'answer to /late');
  assert.deepEqual(upstream.seen, ['GET /before', 'GET /late']);
  assert.equal(proxy.heldConnections, 1);

  proxy.cut('refuse');
  await assert.rejects(get(`${proxy.url}/refused`));
  proxy.restore();
  assert.equal(await get(`${proxy.url}/after`), 'answer to /after');
  assert.deepEqual(upstream.seen, ['GET /before', 'GET /late', 'GET /after']);
});

test('cut() resets a connection that is established, even one waiting for its answer', async (t) => {
  const server = http.createServer(() => {
    // Never answers: the request waits until the proxy cuts it.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const proxy = await TcpProxy.start(t, (server.address() as AddressInfo).port);
  const waiting = get(`${proxy.url}/slow`);
  await sleep(200);
  proxy.cut();
  await assert.rejects(waiting);
});
