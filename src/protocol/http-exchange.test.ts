// exchange() against real local servers: a silent server or a stalled body
// fails the attempt instead of hanging its caller, and a stream body is sent whole.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { connectionPool, exchange, readBody } from './http-exchange.ts';

const servers: Server[] = [];
after(() => servers.forEach((server) => server.closeAllConnections()));

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('exchange', () => {
  it('sends a stream body whole and reads the answer', async () => {
    const url = await serve(async (request, response) => response.end(`got ${(await readBody(request)).length} bytes`));
    const agent = connectionPool(url);
    const body = Readable.from([Buffer.alloc(70_000, 1), Buffer.alloc(30_000, 2)]);
    const message = await exchange({ url, method: 'PUT', headers: {}, body, agent, idleTimeoutMs: 5_000 });
    assert.equal((await readBody(message)).toString(), 'got 100000 bytes');
    agent.destroy();
  });

  it('fails when the server accepts the request and never answers', async () => {
    const url = await serve(() => undefined);
    const agent = connectionPool(url);
    await assert.rejects(exchange({ url, method: 'GET', headers: {}, agent, idleTimeoutMs: 200 }), /no answer for 200 ms/);
    agent.destroy();
  });

  it('fails a body that stops half way', async () => {
    const url = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': '100' });
      response.write('only part of it');
    });
    const agent = connectionPool(url);
    const message = await exchange({ url, method: 'GET', headers: {}, agent, idleTimeoutMs: 200 });
    await assert.rejects(readBody(message), /the response stalled/);
    agent.destroy();
  });

  it('stops when its signal aborts', async () => {
    const url = await serve(() => undefined);
    const agent = connectionPool(url);
    await assert.rejects(exchange({ url, method: 'GET', headers: {}, agent, signal: AbortSignal.timeout(100), idleTimeoutMs: 60_000 }), { name: 'AbortError' });
    agent.destroy();
  });
});
