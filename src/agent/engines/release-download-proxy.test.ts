// Engine releases are fetched through the proxy the environment names, as
// the provider cache's downloads are. Its own file: the HTTP client reads the
// proxy variables once, when the first download creates it.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { fetchText } from './release-download.ts';

const proxied: string[] = [];
const proxy = createServer((request: IncomingMessage, response) => {
  // A forward proxy receives the absolute URL of the target.
  proxied.push(request.url ?? '');
  response.end('through the proxy\n');
});

before(async () => {
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  delete process.env.NO_PROXY;
  delete process.env.no_proxy;
});

after(() => {
  delete process.env.HTTP_PROXY;
  proxy.close();
});

test('a release file is fetched through HTTP_PROXY when it is set', async () => {
  // Nothing listens on this name: only the proxy can answer.
  const url = 'http://releases.outpost.invalid/tofu/1.9.0/SHA256SUMS';
  const body = await fetchText(url, { signal: AbortSignal.timeout(10_000), timeoutMs: 10_000 });
  assert.equal(body, 'through the proxy\n');
  assert.deepEqual(proxied, [url]);
});
