// The provider cache tells the agent's metrics how each package was served:
// fetched for the job (`download`) or from disk (`hit`), exactly as it counts
// them in the job's session; a provider that does not exist is neither.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { rootCertificates } from 'node:tls';
import { pino } from 'pino';
import { Agent } from 'undici';
import { startProviderRegistry } from '../../../test/support/provider-registry.ts';
import { hostPlatform } from './provider-address.ts';
import { ProviderCache } from './provider-cache.ts';
import { OriginRegistrySource } from './provider-sources.ts';
import { ProviderStore } from './provider-store.ts';

const hostname = 'registry.outpost.test';

test('onServe reports a download, then hits, and nothing for an unknown provider', async (t) => {
  const registry = await startProviderRegistry({ protocol: 'registry', providers: [{ namespace: 'outpost-test', type: 'simple', versions: ['1.0.0'] }] });
  t.after(() => registry.close());
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, registry.caPem] } });
  t.after(() => dispatcher.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-provider-served-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new ProviderStore(dir);
  await store.open();
  const origin = new OriginRegistrySource({ services: { [hostname]: `${registry.url}/v1/providers/` }, credentials: {} }, { dispatcher, requestTimeoutMs: 10_000 });
  const served: string[] = [];
  const cache = new ProviderCache({
    store,
    sources: [origin],
    versionsTtlMs: 60_000,
    sizeLimitBytes: 0,
    downloadTimeoutMs: 30_000,
    dispatcher,
    logger: pino({ level: 'silent' }),
    onServe: (result) => served.push(result),
  });
  const key = { hostname, namespace: 'outpost-test', type: 'simple', version: '1.0.0', platform: hostPlatform() };

  const first = cache.openSession('job-1', () => undefined);
  assert.notEqual(await cache.package(key, first), 'not_found');
  const second = cache.openSession('job-2', () => undefined);
  assert.notEqual(await cache.package(key, second), 'not_found');
  assert.notEqual(await cache.package(key, second), 'not_found');
  assert.equal(await cache.package({ ...key, type: 'nonexistent' }, second), 'not_found');

  assert.deepEqual(served, ['download', 'hit', 'hit']);
  assert.deepEqual(first.served, { fromCache: 0, downloaded: 1 });
  assert.deepEqual(second.served, { fromCache: 2, downloaded: 0 });
});
