// commit-status.ts against a local server standing in for each forge: the
// request each provider's API expects, and the failures a caller sees.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, beforeEach, describe, it } from 'node:test';
import { postCommitStatus, readRepository, type CommitStatus } from './commit-status.ts';

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

const token = 'tok-SECRET-1234567890';
const sha = 'a'.repeat(40);
const status: CommitStatus = { state: 'failure', context: 'outpost/production', description: 'x'.repeat(200), targetUrl: 'https://outpost.example.com/runs/run-1' };
const recorded: Recorded[] = [];
let answer: (request: IncomingMessage, response: ServerResponse) => void = (_request, response) => response.writeHead(201).end('{}');

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    recorded.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: text ? JSON.parse(text) : undefined });
    answer(request, response);
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
after(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  recorded.length = 0;
  answer = (_request, response) => response.writeHead(201, { 'content-type': 'application/json' }).end('{}');
});

const truncated = `${'x'.repeat(139)}…`;

describe('postCommitStatus', () => {
  it('posts a GitHub status with the API version and a Bearer token', async () => {
    await postCommitStatus({ kind: 'github', url: 'https://ghe.example.com', apiUrl: `${base}/api/v3` }, { token }, 'acme/infra', sha, status);
    const [request] = recorded;
    assert.equal(request?.method, 'POST');
    assert.equal(request?.url, `/api/v3/repos/acme/infra/statuses/${sha}`);
    assert.equal(request?.headers.authorization, `Bearer ${token}`);
    assert.equal(request?.headers.accept, 'application/vnd.github+json');
    assert.equal(request?.headers['x-github-api-version'], '2022-11-28');
    assert.ok(request?.headers['user-agent']);
    assert.deepEqual(request?.body, { state: 'failure', target_url: status.targetUrl, description: truncated, context: 'outpost/production' });
  });

  it('posts a Gitea status with a token header', async () => {
    await postCommitStatus({ kind: 'gitea', url: base }, { token }, 'acme/infra', sha, { ...status, state: 'error' });
    assert.equal(recorded[0]?.url, `/api/v1/repos/acme/infra/statuses/${sha}`);
    assert.equal(recorded[0]?.headers.authorization, `token ${token}`);
    assert.deepEqual(recorded[0]?.body, { state: 'error', target_url: status.targetUrl, description: truncated, context: 'outpost/production' });
  });

  it('posts a GitLab status to the URL-encoded project, failure as failed, and takes a repeated state as done', async () => {
    await postCommitStatus({ kind: 'gitlab', url: base }, { token }, 'group/sub/infra', sha, status);
    assert.equal(recorded[0]?.url, `/api/v4/projects/group%2Fsub%2Finfra/statuses/${sha}`);
    assert.equal(recorded[0]?.headers['private-token'], token);
    assert.equal(recorded[0]?.headers.authorization, undefined);
    assert.deepEqual(recorded[0]?.body, { state: 'failed', name: 'outpost/production', target_url: status.targetUrl, description: truncated });
    answer = (_request, response) => response.writeHead(400).end('{"message":"Cannot transition status via :enqueue from :pending"}');
    await postCommitStatus({ kind: 'gitlab', url: base }, { token }, 'group/infra', sha, { ...status, state: 'pending' });
    assert.equal((recorded[1]?.body as { state: string }).state, 'pending');
  });

  it('posts a Bitbucket Data Center build status', async () => {
    answer = (_request, response) => response.writeHead(204).end();
    await postCommitStatus({ kind: 'bitbucket-dc', url: base }, { token }, 'OPS/infra', sha, { ...status, state: 'pending', description: 'planning' });
    assert.equal(recorded[0]?.url, `/rest/build-status/1.0/commits/${sha}`);
    assert.equal(recorded[0]?.headers.authorization, `Bearer ${token}`);
    assert.deepEqual(recorded[0]?.body, { state: 'INPROGRESS', key: 'outpost/production', name: 'outpost/production', url: status.targetUrl, description: 'planning' });
  });

  it('refuses a plain git provider, a bad repository name and a bad sha without a request', async () => {
    await assert.rejects(postCommitStatus({ kind: 'git', url: '' }, { token }, 'https://git.example.com/x.git', sha, status), /no API/);
    await assert.rejects(postCommitStatus({ kind: 'github', url: base }, { token }, 'acme/../x', sha, status), { code: 'validation_failed' });
    await assert.rejects(postCommitStatus({ kind: 'github', url: base }, { token }, 'acme/infra', 'HEAD', status), { code: 'validation_failed' });
    assert.equal(recorded.length, 0);
  });

  it('fails with vcs_api_failed naming the status and the provider\'s words, never the token', async () => {
    answer = (_request, response) => response.writeHead(403).end(JSON.stringify({ message: `Resource not accessible by token ${token}`, documentation_url: 'https://docs' }));
    await assert.rejects(postCommitStatus({ kind: 'github', url: base, apiUrl: base }, { token }, 'acme/infra', sha, status), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'vcs_api_failed');
      assert.match(error.message, /GitHub answered 403 to POST \/repos\/acme\/infra\/statuses\/a+: the token may not do this .*Resource not accessible/);
      assert.ok(!error.message.includes(token));
      return true;
    });
  });

  it('cuts a long answer to 300 characters', async () => {
    answer = (_request, response) => response.writeHead(500).end('e'.repeat(5000));
    await assert.rejects(postCommitStatus({ kind: 'gitea', url: base }, { token }, 'acme/infra', sha, status), (error: Error) => {
      assert.ok(error.message.length < 450, error.message);
      return true;
    });
  });

  it('fails with vcs_api_failed naming the host when it cannot be reached or does not answer in time', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(postCommitStatus({ kind: 'gitea', url: `http://127.0.0.1:${port}` }, { token }, 'acme/infra', sha, status), new RegExp(`Gitea at 127\\.0\\.0\\.1:${port} could not be reached for POST .*: ECONNREFUSED`));
    answer = () => undefined;
    await assert.rejects(postCommitStatus({ kind: 'gitea', url: base }, { token }, 'acme/infra', sha, status, { timeoutMs: 100 }), /Gitea at 127\.0\.0\.1:\d+ did not answer POST .* within 100 ms/);
    await assert.rejects(postCommitStatus({ kind: 'gitea', url: base }, { token }, 'acme/infra', sha, status, { signal: AbortSignal.timeout(50) }), { name: 'TimeoutError' });
  });

  it('follows a redirect within the API and refuses one to another host', async () => {
    answer = (request, response) => {
      if (request.url?.includes('/old/')) response.writeHead(307, { location: request.url.replace('/old/', '/new/') }).end();
      else response.writeHead(201).end('{}');
    };
    await postCommitStatus({ kind: 'github', url: base, apiUrl: base }, { token }, 'old/infra', sha, status);
    assert.deepEqual(recorded.map((request) => request.url), [`/repos/old/infra/statuses/${sha}`, `/repos/new/infra/statuses/${sha}`]);
    assert.equal(recorded[1]?.headers.authorization, `Bearer ${token}`);
    answer = (_request, response) => response.writeHead(307, { location: 'https://elsewhere.example.com/x' }).end();
    await assert.rejects(postCommitStatus({ kind: 'github', url: base, apiUrl: base }, { token }, 'acme/infra', sha, status), /another host \(elsewhere\.example\.com\)/);
  });
});

describe('readRepository', () => {
  function answering(routes: Record<string, [number, unknown]>): void {
    answer = (request, response) => {
      const [code, body] = routes[request.url ?? ''] ?? [404, { message: 'not found' }];
      response.writeHead(code, { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
    };
  }

  it('reads GitHub and Gitea repositories', async () => {
    answering({ '/repos/acme/infra': [200, { default_branch: 'main', private: true, name: 'infra' }] });
    assert.deepEqual(await readRepository({ kind: 'github', url: base, apiUrl: base }, { token }, 'acme/infra'), { defaultBranch: 'main', private: true });
    answering({ '/api/v1/repos/acme/infra': [200, { default_branch: 'trunk', private: false }] });
    assert.deepEqual(await readRepository({ kind: 'gitea', url: base }, { token }, 'acme/infra'), { defaultBranch: 'trunk', private: false });
  });

  it('reads a GitLab project, internal counting as private', async () => {
    answering({ '/api/v4/projects/group%2Finfra': [200, { default_branch: 'main', visibility: 'internal' }] });
    assert.deepEqual(await readRepository({ kind: 'gitlab', url: base }, { token }, 'group/infra'), { defaultBranch: 'main', private: true });
  });

  it('reads a Bitbucket repository and its default branch, by the older endpoint when the newer is missing', async () => {
    answering({
      '/rest/api/latest/projects/OPS/repos/infra': [200, { slug: 'infra', public: false }],
      '/rest/api/latest/projects/OPS/repos/infra/branches/default': [200, { id: 'refs/heads/main', displayId: 'main' }],
    });
    assert.deepEqual(await readRepository({ kind: 'bitbucket-dc', url: base }, { token }, 'OPS/infra'), { defaultBranch: 'main', private: true });
    answering({ '/rest/api/latest/projects/~ADA/repos/infra': [200, { public: true }] });
    assert.deepEqual(await readRepository({ kind: 'bitbucket-dc', url: base }, { token }, '~ADA/infra'), { defaultBranch: null, private: false });
  });

  it('fails with vcs_api_failed when the credentials cannot see the repository', async () => {
    answering({});
    await assert.rejects(readRepository({ kind: 'gitea', url: base }, { token }, 'acme/secret'), /Gitea answered 404 to GET \/api\/v1\/repos\/acme\/secret: not found, or the token cannot see/);
  });
});
