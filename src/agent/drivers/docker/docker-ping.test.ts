// pingDocker() against stand-in daemons on a unix socket and on TCP: the
// answer `auto` picks the driver by, and no hang on a daemon that never answers.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pingDocker } from './docker-ping.ts';

const scratch = await mkdtemp(path.join(os.tmpdir(), 'docker-ping-'));
const servers: Server[] = [];
after(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  await rm(scratch, { recursive: true, force: true });
});

async function daemonOnSocket(name: string, handler: RequestListener): Promise<string> {
  const socket = path.join(scratch, name);
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return `unix://${socket}`;
}

describe('pingDocker', () => {
  it('is satisfied by 200 on /_ping', async () => {
    const host = await daemonOnSocket('ok.sock', (request, response) => response.writeHead(request.url === '/_ping' ? 200 : 404).end('OK'));
    assert.equal(await pingDocker(host), undefined);
  });

  it('says which status a daemon answered otherwise', async () => {
    const host = await daemonOnSocket('broken.sock', (_request, response) => response.writeHead(500).end());
    assert.equal(await pingDocker(host), 'HTTP 500 from /_ping');
  });

  it('says why when nothing listens', async () => {
    assert.match((await pingDocker(`unix://${path.join(scratch, 'absent.sock')}`)) ?? '', /ENOENT/);
  });

  it('gives up on a daemon that accepts and never answers', async () => {
    const silent = createServer(() => undefined);
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    assert.equal(await pingDocker(`tcp://127.0.0.1:${port}`, 200), 'no answer within 0.2 s');
  });
});
