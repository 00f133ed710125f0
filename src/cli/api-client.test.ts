// The client's HTTP contract against a throwaway loopback server: headers,
// request documents, error documents, and log chunks delivered as they come.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApiClient } from './api-client.ts';
import { ApiError, ServerUnreachableError } from './api-error.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

let server: http.Server;
let baseUrl: string;
const seen: Seen[] = [];
let logChunkSent: (() => void) | undefined;
let releaseLog: (() => void) | undefined;

before(async () => {
  server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      route(request.method ?? '', request.url ?? '', response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

function route(method: string, url: string, response: http.ServerResponse): void {
  const json = (status: number, document: unknown): void => {
    response.writeHead(status, { 'content-type': 'application/vnd.api+json' });
    response.end(JSON.stringify(document));
  };
  if (method === 'POST' && url === '/api/v2/organizations/default/agent-pools') {
    json(201, { data: { id: 'apool-1', type: 'agent-pools', attributes: { name: 'prod', 'created-at': '2025-01-01T00:00:00Z', 'agent-count': 0 } } });
  } else if (url.startsWith('/api/v2/organizations/paged/workspaces')) {
    // Three workspaces, two a page whatever the size asked: the client must follow next-page.
    const page = Number(new URL(url, 'http://x').searchParams.get('page[number]') ?? '1');
    const names = page === 1 ? ['a', 'b'] : ['c'];
    json(200, {
      data: names.map((name) => ({ id: `ws-${name}`, type: 'workspaces', attributes: { name } })),
      meta: { pagination: { 'current-page': page, 'next-page': page === 1 ? 2 : null, 'total-pages': 2, 'total-count': 3 } },
    });
  } else if (url === '/api/v2/workspaces/ws-missing') {
    json(404, { errors: [{ status: '404', code: 'not_found', title: 'no such resource', detail: 'workspace ws-missing not found' }] });
  } else if (url.startsWith('/api/v2/plans/plan-1/logs')) {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.write('first line\n');
    logChunkSent?.();
    releaseLog = () => response.end('last line\n');
  } else if (url.includes('/vcs-') && method !== 'DELETE') {
    json(200, { data: url.includes('/vcs-providers/vcs-1') && !url.includes('deliveries') ? { id: 'vcs-1', type: 'vcs-providers', attributes: {} } : [] });
  } else if (method === 'DELETE') {
    response.writeHead(204).end();
  } else if (url === '/api/v2/workspaces/ws-1/current-state-version') {
    json(404, { errors: [{ status: '404', code: 'not_found', title: 'no such resource' }] });
  } else {
    json(404, { errors: [{ status: '404', code: 'route_not_found', title: 'no such endpoint' }] });
  }
}

describe('ApiClient', () => {
  it('sends the bearer token and a JSON:API document, and returns `data`', async () => {
    const client = new ApiClient({ url: `${baseUrl}/`, token: 'opa_test' });
    const pool = await client.createPool('default', 'prod');
    assert.equal(pool.id, 'apool-1');
    const request = seen.at(-1);
    assert.equal(request?.headers.authorization, 'Bearer opa_test');
    assert.equal(request?.headers['content-type'], 'application/vnd.api+json');
    assert.deepEqual(JSON.parse(request?.body ?? ''), { data: { type: 'agent-pools', attributes: { name: 'prod', kind: 'runner' } } });
  });

  it('throws the error document as an ApiError', async () => {
    const client = new ApiClient({ url: baseUrl, token: 'opa_test' });
    await assert.rejects(client.getWorkspace('ws-missing'), (error) => {
      assert.ok(error instanceof ApiError);
      assert.deepEqual([error.status, error.code, error.detail], [404, 'not_found', 'workspace ws-missing not found']);
      return true;
    });
  });

  it('accepts an empty 204 answer', async () => {
    const client = new ApiClient({ url: baseUrl, token: 'opa_test' });
    await client.revokePoolToken('at-1');
    assert.equal(seen.at(-1)?.url, '/api/v2/authentication-tokens/at-1');
  });

  it('addresses VCS providers and triggers as the API documents them', async () => {
    const client = new ApiClient({ url: baseUrl, token: 'opa_test' });
    await client.createVcsProvider('acme', { name: 'gh', kind: 'github', 'http-url': 'https://github.com', token: 'ghp_x' });
    await client.updateVcsProvider('vcs-1', { 'agent-pool-id': null });
    await client.rotateVcsWebhookSecret('vcs-1', 600);
    await client.listVcsDeliveries('vcs-1', 5);
    await client.listVcsTriggers('ws-1', 7);
    await client.deleteVcsProvider('vcs-1');
    assert.deepEqual(
      seen.slice(-6).map((request) => [request.method, request.url, request.body === '' ? undefined : JSON.parse(request.body)]),
      [
        ['POST', '/api/v2/organizations/acme/vcs-providers', { data: { type: 'vcs-providers', attributes: { name: 'gh', kind: 'github', 'http-url': 'https://github.com', token: 'ghp_x' } } }],
        ['PATCH', '/api/v2/vcs-providers/vcs-1', { data: { type: 'vcs-providers', id: 'vcs-1', attributes: { 'agent-pool-id': null } } }],
        ['POST', '/api/v2/vcs-providers/vcs-1/actions/rotate-webhook-secret', { 'overlap-seconds': 600 }],
        ['GET', '/api/v2/vcs-providers/vcs-1/deliveries?page%5Bsize%5D=5', undefined],
        ['GET', '/api/v2/workspaces/ws-1/vcs-triggers?page%5Bsize%5D=7', undefined],
        ['DELETE', '/api/v2/vcs-providers/vcs-1', undefined],
      ],
    );
  });

  it('reports "no current state" as undefined rather than an error', async () => {
    const client = new ApiClient({ url: baseUrl, token: 'opa_test' });
    assert.equal(await client.getCurrentStateVersion('ws-1'), undefined);
  });

  it('hands log chunks over as they arrive, before the response ends', async () => {
    const client = new ApiClient({ url: baseUrl, token: 'opa_test' });
    const received: string[] = [];
    const firstSent = new Promise<void>((resolve) => (logChunkSent = resolve));
    const reading = client.readLog('plan', 'plan-1', { offset: 12, follow: true }, (chunk) => {
      received.push(chunk.toString('utf8'));
      // The server holds the response open until the first chunk was seen here.
      if (received.length === 1) releaseLog?.();
    });
    await firstSent;
    await reading;
    assert.deepEqual(received, ['first line\n', 'last line\n']);
    assert.equal(seen.at(-1)?.url, '/api/v2/plans/plan-1/logs?offset=12&follow=1');
  });

  it('throws ServerUnreachableError when nothing listens', async () => {
    const client = new ApiClient({ url: 'http://127.0.0.1:1', token: 'opa_test' });
    await assert.rejects(client.listPools('default'), ServerUnreachableError);
  });
});

describe('lists', () => {
  it('follows next-page until the last page', async () => {
    const client = new ApiClient({ url: baseUrl, token: 'opa_x' });
    const workspaces = await client.listWorkspaces('paged');
    assert.deepEqual(workspaces.map((workspace) => workspace.id), ['ws-a', 'ws-b', 'ws-c']);
  });
});
