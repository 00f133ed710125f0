import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { agentPaths } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { ControlPlaneTransport } from './control-plane-transport.ts';
import { startFakeControlPlane, type FakeControlPlane } from './fake-control-plane.test-support.ts';
import { JobApi } from './job-api.ts';

const fast = { budgetMs: 200, firstDelayMs: 5, maxDelayMs: 20 };
const spec = {
  job_id: 'j', run_id: 'r', kind: 'plan' as const, is_destroy: false, plan_only: false,
  workspace: { id: 'w', name: 'w', working_directory: '' }, engine: { name: 'opentofu' as const, version: '1.10.10' }, variables: [],
};

describe('JobApi over the transport', () => {
  let plane: FakeControlPlane;
  before(async () => {
    plane = await startFakeControlPlane('token-1');
    plane.spec = spec;
  });
  after(() => plane.close());

  const api = (token = 'token-1', retries: string[] = []): JobApi =>
    new JobApi(new ControlPlaneTransport({ baseUrl: plane.url, token, retry: fast, onRetry: (message) => retries.push(message) }));

  it('retries 503 until the control plane answers, saying so once when it fails and once when it answers again', async () => {
    plane.unavailable.set(agentPaths.jobSpec, 3);
    const retries: string[] = [];
    assert.equal((await api('token-1', retries).fetchSpec()).job_id, 'j');
    assert.equal(retries.length, 2, retries.join('\n'));
    assert.match(retries[0] ?? '', /answered 503; retrying with backoff for up to 200ms/);
    assert.match(retries[1] ?? '', /answers again after/);
  });

  it('gives up once its time budget is spent, with the server\'s code', async () => {
    plane.unavailable.set(agentPaths.jobSpec, 1_000);
    await assert.rejects(api().fetchSpec(), (error: unknown) => error instanceof OutpostError && error.code === 'unavailable');
    plane.unavailable.clear();
  });

  it('does not retry a 4xx and keeps its code', async () => {
    const before = plane.requests.length;
    await assert.rejects(api('wrong-token').fetchSpec(), (error: unknown) => error instanceof OutpostError && error.code === 'token_invalid');
    assert.equal(plane.requests.length - before, 1);
  });

  it('reports a control plane it cannot reach as unavailable', async () => {
    const nowhere = new JobApi(new ControlPlaneTransport({ baseUrl: 'http://127.0.0.1:9', token: 't', retry: fast }));
    await assert.rejects(nowhere.fetchSpec(), (error: unknown) => error instanceof OutpostError && error.code === 'unavailable' && /cannot reach/.test(error.message));
  });

  it('goes through HTTP_PROXY, and around it for NO_PROXY hosts', async () => {
    const proxy = await startForwardProxy();
    try {
      const viaProxy = new ControlPlaneTransport({ baseUrl: plane.url, token: 'token-1', retry: fast, proxy: { httpProxy: proxy.url } });
      assert.equal((await new JobApi(viaProxy).fetchSpec()).job_id, 'j');
      await viaProxy.close();
      assert.deepEqual(proxy.seen, [`${plane.url}${agentPaths.jobSpec}`]);

      const around = new ControlPlaneTransport({ baseUrl: plane.url, token: 'token-1', retry: fast, proxy: { httpProxy: proxy.url, noProxy: '127.0.0.1' } });
      assert.equal((await new JobApi(around).fetchSpec()).job_id, 'j');
      await around.close();
      assert.equal(proxy.seen.length, 1);
    } finally {
      await proxy.close();
    }
  });

  it('sends a file upload again, whole, on each attempt', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'job-api-'));
    try {
      const file = path.join(dir, 'plan.tfplan');
      const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
      await writeFile(file, bytes);
      plane.unavailable.set(agentPaths.jobPlan, 2);
      await api().uploadPlan(file);
      assert.ok(plane.plan?.equals(bytes));
    } finally {
      plane.unavailable.clear();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A plain HTTP forward proxy: it records the absolute URL of each request and relays it. */
async function startForwardProxy(): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((incoming: IncomingMessage, outgoing: ServerResponse) => {
    seen.push(incoming.url ?? '');
    const upstream = request(incoming.url ?? '', { method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    upstream.on('error', () => outgoing.writeHead(502).end());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
