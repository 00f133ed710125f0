// The provider cache against real upstreams: the fixture registry (registry
// protocol, signed SHA256SUMS) and fixture network mirrors over HTTPS, real
// provider zips on disk. Each test starts its own fixtures, so faults one
// test injects never reach the next.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import { rootCertificates } from 'node:tls';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { startProviderRegistry, type ProviderRegistry, type ProviderRegistryOptions } from '../../../test/support/provider-registry.ts';
import { createMirrorCertificate } from './mirror-certificate.ts';
import { fileSha256, packageHashes } from './package-hashes.ts';
import { hostPlatform, type PackageKey } from './provider-address.ts';
import { ProviderCache, UpstreamUnavailable } from './provider-cache.ts';
import { NetworkMirrorSource, OriginRegistrySource, SourceFailed, type ProviderSource } from './provider-sources.ts';
import { ProviderStore, type StoredPackage } from './provider-store.ts';

// Portless, as the engines need for anything that goes through a mirror; mapped to the fixture by `services`.
const hostname = 'registry.outpost.test';
const platform = hostPlatform();
const address = { hostname, namespace: 'outpost-test', type: 'simple' };
const keyOf = (version: string): PackageKey => ({ ...address, version, platform });
const zipName = (version: string): string => `terraform-provider-simple_${version}_${platform}.zip`;
const sha256Of = (registry: ProviderRegistry, version: string): string => registry.packageSha256('outpost-test', 'simple', version);
const logger = pino({ level: 'silent' });

let scratch = '';
before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-provider-cache-test-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

async function registryFor(t: TestContext, options: Partial<ProviderRegistryOptions> = {}): Promise<ProviderRegistry> {
  const providers = [{ namespace: 'outpost-test', type: 'simple', versions: ['1.0.0', '1.1.0'] }];
  const registry = await startProviderRegistry({ protocol: 'registry', providers, ...options });
  t.after(() => registry.close());
  return registry;
}

function trusting(t: TestContext, caPems: string[]): Agent {
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, ...caPems] } });
  t.after(() => dispatcher.close());
  return dispatcher;
}

function originFor(registryUrl: string, dispatcher: Agent): OriginRegistrySource {
  return new OriginRegistrySource({ services: { [hostname]: `${registryUrl}/v1/providers/` }, credentials: {} }, { dispatcher, requestTimeoutMs: 10_000 });
}

type CacheOptions = { dir?: string; sizeLimitBytes?: number; versionsTtlMs?: number };

async function cacheOver(sources: ProviderSource[], dispatcher: Agent, options: CacheOptions = {}) {
  const dir = options.dir ?? (await mkdtemp(path.join(scratch, 'cache-')));
  const store = new ProviderStore(dir);
  await store.open();
  const { sizeLimitBytes = 0, versionsTtlMs = 60_000 } = options;
  const cache = new ProviderCache({ store, sources, versionsTtlMs, sizeLimitBytes, downloadTimeoutMs: 30_000, dispatcher, logger });
  return { cache, store, dir };
}

/** A signed fixture registry as the only source, and a cache over it. */
async function originCache(t: TestContext, registryOptions: Partial<ProviderRegistryOptions> = {}, options: CacheOptions = {}) {
  const registry = await registryFor(t, registryOptions);
  const dispatcher = trusting(t, [registry.caPem]);
  const origin = originFor(registry.url, dispatcher);
  return { registry, dispatcher, origin, ...(await cacheOver([origin], dispatcher, options)) };
}

function sessionOf(cache: ProviderCache, jobId: string) {
  const notes: string[] = [];
  return { session: cache.openSession(jobId, (line) => notes.push(line)), notes };
}

function found(result: StoredPackage | 'not_found'): StoredPackage {
  assert.ok(result !== 'not_found');
  return result;
}

const zipRequests = (registry: ProviderRegistry, version = '') => registry.requests.filter((each) => each.path.endsWith(`${version}_${platform}.zip`));
const recordOf = async (dir: string, version: string) =>
  JSON.parse(await readFile(path.join(dir, 'packages', hostname, 'outpost-test', 'simple', version, `${platform}.json`), 'utf8')) as { source: string };
const cachedVersions = async (store: ProviderStore) => (await store.list()).map((each) => each.key.version).sort();

/** An HTTPS server answering fixed JSON documents by path (404 otherwise), for upstreams the fixture cannot play. */
async function serveDocuments(t: TestContext, documents: Record<string, unknown>) {
  const certificate = await createMirrorCertificate({ hosts: ['localhost'], issuer: 'Outpost test documents CA' });
  const paths: string[] = [];
  const server = https.createServer({ cert: certificate.certPem, key: certificate.keyPem }, (incoming, response) => {
    paths.push(incoming.url ?? '');
    const body = documents[incoming.url ?? ''];
    response.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body ?? { errors: ['Not Found'] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `https://localhost:${(server.address() as AddressInfo).port}`, caPem: certificate.caPem, paths };
}

// One call: evict() promises an eviction that started after the call, even
// when a run triggered by a download is still going.
async function evictNow(cache: ProviderCache): Promise<void> {
  await cache.evict('test');
}

describe('ProviderCache', () => {
  it('shares one download between ten jobs asking for the same package at once', async (t) => {
    const { registry, cache } = await originCache(t);
    const sessions = Array.from({ length: 10 }, (_, index) => sessionOf(cache, `job-${index}`).session);
    const results = (await Promise.all(sessions.map((session) => cache.package(keyOf('1.0.0'), session)))).map(found);
    assert.equal(zipRequests(registry).length, 1);
    assert.equal(new Set(results.map((result) => result.file)).size, 1);
    assert.equal(await fileSha256(results[0]!.file), sha256Of(registry, '1.0.0'));
    assert.ok(sessions.every((session) => session.served.downloaded + session.served.fromCache === 1));
  });

  it('keeps a version list for its TTL, refetches it after, and falls back to the stale list when upstream fails', async (t) => {
    const { registry, dispatcher, origin, cache, dir } = await originCache(t);
    const versionRequests = () => registry.requests.filter((each) => each.path.endsWith('/versions')).length;
    const { session } = sessionOf(cache, 'job');
    assert.deepEqual(await cache.versions(address, session), ['1.0.0', '1.1.0']);
    assert.deepEqual(await cache.versions(address, session), ['1.0.0', '1.1.0']);
    assert.equal(versionRequests(), 1, 'the second answer comes from the cache');
    // Over the same directory, lists expire at once: every call asks upstream.
    const expired = (await cacheOver([origin], dispatcher, { dir, versionsTtlMs: 0 })).cache;
    const { session: later, notes } = sessionOf(expired, 'later');
    assert.deepEqual(await expired.versions(address, later), ['1.0.0', '1.1.0']);
    assert.equal(versionRequests(), 2);
    registry.fault({ path: /\/versions$/, status: 500 });
    assert.deepEqual(await expired.versions(address, later), ['1.0.0', '1.1.0']);
    assert.equal(versionRequests(), 3);
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /HTTP 500; using the version list of registry\.outpost\.test\/outpost-test\/simple fetched \d{4}-/);
    // Without a list on disk there is nothing to fall back to.
    const empty = (await cacheOver([origin], dispatcher)).cache;
    registry.fault({ path: /\/versions$/, status: 500 });
    await assert.rejects(empty.versions(address, sessionOf(empty, 'x').session), UpstreamUnavailable);
    assert.equal(await empty.versions({ ...address, type: 'missing' }, sessionOf(empty, 'y').session), 'not_found');
  });

  it('retries a download cut short, and gives up without leaving anything behind when it keeps failing', async (t) => {
    const { registry, cache, store, dir } = await originCache(t);
    const { session } = sessionOf(cache, 'job');
    registry.fault({ path: /\.zip$/, truncateAfterBytes: 100_000 });
    const result = found(await cache.package(keyOf('1.0.0'), session));
    assert.deepEqual(zipRequests(registry).map((each) => each.status), [200, 200]);
    assert.equal(zipRequests(registry)[0]!.bytes, 100_000);
    assert.equal(await fileSha256(result.file), sha256Of(registry, '1.0.0'));
    assert.deepEqual(await readdir(path.join(dir, '.partial')), []);
    // Cut short at every attempt: the cache gives up, and nothing of the package remains.
    registry.fault({ path: /1\.1\.0_.*\.zip$/, truncateAfterBytes: 100_000, times: 5 });
    await assert.rejects(cache.package(keyOf('1.1.0'), session), (error: Error) =>
      error instanceof UpstreamUnavailable && /could not fetch registry\.outpost\.test\/outpost-test\/simple 1\.1\.0 .*\.zip: /.test(error.message));
    assert.equal(zipRequests(registry, '1.1.0').length, 2, 'one retry');
    assert.equal(await store.lookup(keyOf('1.1.0'), () => assert.fail('no damage expected')), undefined);
    await assert.rejects(readdir(path.join(dir, 'packages', hostname, 'outpost-test', 'simple', '1.1.0')), { code: 'ENOENT' });
    assert.deepEqual(await readdir(path.join(dir, '.partial')), []);
  });

  it('checks a package against what a network mirror vouches for: refuses a wrong zh:, accepts a right h1: alone', async (t) => {
    const registry = await registryFor(t);
    const dispatcher = trusting(t, [registry.caPem]);
    const zipUrl = (version: string) => `${registry.url}/files/outpost-test/simple/${version}/${zipName(version)}`;
    // The reference h1: of 1.1.0 (package-hashes.test.ts proves packageHashes() computes what tofu does).
    const reference = path.join(scratch, zipName('1.1.0'));
    await writeFile(reference, Buffer.from(await (await request(zipUrl('1.1.0'), { dispatcher })).body.arrayBuffer()));
    const { h1 } = await packageHashes(reference);
    const base = `/${hostname}/outpost-test/simple`;
    const mirror = await serveDocuments(t, {
      [`${base}/1.0.0.json`]: { archives: { [platform]: { url: zipUrl('1.0.0'), hashes: [`zh:${'0'.repeat(64)}`] } } },
      [`${base}/1.1.0.json`]: { archives: { [platform]: { url: zipUrl('1.1.0'), hashes: [h1] } } },
    });
    const both = trusting(t, [registry.caPem, mirror.caPem]);
    const mirrorSource = new NetworkMirrorSource({ url: `${mirror.url}/` }, { dispatcher: both, requestTimeoutMs: 10_000 });
    const alone = await cacheOver([mirrorSource], both);
    await assert.rejects(alone.cache.package(keyOf('1.0.0'), sessionOf(alone.cache, 'a').session), /does not match its published checksum/);
    assert.deepEqual(await alone.store.list(), []);
    assert.deepEqual(await readdir(path.join(alone.dir, '.partial')), []);
    // With the origin behind the mirror, the job gets the package and a note saying why it came from there.
    const { cache, dir } = await cacheOver([mirrorSource, originFor(registry.url, both)], both);
    const { session, notes } = sessionOf(cache, 'job');
    const result = found(await cache.package(keyOf('1.0.0'), session));
    assert.equal(await fileSha256(result.file), sha256Of(registry, '1.0.0'));
    assert.equal((await recordOf(dir, '1.0.0')).source, `registry ${hostname}`);
    assert.equal(zipRequests(registry, '1.0.0').length, 3, 'the mirror\'s archive once per cache, then the origin\'s');
    assert.deepEqual(notes, [
      `Outpost provider cache: network mirror ${mirror.url}/: the package of ${hostname}/outpost-test/simple 1.0.0 (${platform}) ` +
        'does not match its published checksum; used origin registry instead',
    ]);
    // A mirror vouching with h1: alone: the cache computes h1: to check it, and keeps it.
    const vouchedByH1 = found(await cache.package(keyOf('1.1.0'), session));
    assert.deepEqual(vouchedByH1.hashes, { zh: `zh:${sha256Of(registry, '1.1.0')}`, h1 });
    assert.equal((await recordOf(dir, '1.1.0')).source, `network mirror ${mirror.url}/`);
    assert.equal(notes.length, 1);
  });

  it('refuses an unsigned release from a registry other than OpenTofu\'s', async (t) => {
    const { registry, origin, cache } = await originCache(t, { sign: false });
    await assert.rejects(origin.package(keyOf('1.0.0')), (error: Error) => error instanceof SourceFailed && /simple 1\.0\.0 .* is not signed/.test(error.message));
    await assert.rejects(cache.package(keyOf('1.0.0'), sessionOf(cache, 'job').session), (error: Error) =>
      error instanceof UpstreamUnavailable && /is not signed \(the registry lists no signing keys\)/.test(error.message),
    );
    assert.deepEqual(zipRequests(registry), []);
  });

  it('refuses a release whose SHA256SUMS was signed by another key than the registry lists', async (t) => {
    // Both fixtures serve byte-identical SHA256SUMS, each signed with its own key.
    const [signer, other] = await Promise.all([registryFor(t), registryFor(t)]);
    const fetchDispatcher = trusting(t, [signer.caPem, other.caPem]);
    const downloadPath = `/v1/providers/outpost-test/simple/1.0.0/download/${platform.replace('_', '/')}`;
    const [signed, listed] = await Promise.all(
      [signer, other].map(async (registry) => (await request(`${registry.url}${downloadPath}`, { dispatcher: fetchDispatcher })).body.json() as Promise<object>),
    );
    const server = await serveDocuments(t, {
      [`/own-key${downloadPath}`]: signed,
      [`/other-key${downloadPath}`]: { ...signed, signing_keys: (listed as { signing_keys: unknown }).signing_keys },
    });
    const dispatcher = trusting(t, [signer.caPem, server.caPem]);
    const sourceAt = (prefix: string) =>
      new OriginRegistrySource({ services: { [hostname]: `${server.url}${prefix}/v1/providers/` }, credentials: {} }, { dispatcher, requestTimeoutMs: 10_000 });
    // The same document with the signer's own key passes, so only the key differs.
    assert.notEqual(await sourceAt('/own-key').package(keyOf('1.0.0')), 'not_found');
    await assert.rejects(sourceAt('/other-key').package(keyOf('1.0.0')), (error: Error) =>
      error instanceof SourceFailed && /not made by any of the registry's signing keys/.test(error.message),
    );
    assert.deepEqual(zipRequests(signer), [], 'nothing is downloaded before the signature is checked');
  });

  it('drops a damaged package and downloads it again; a fresh store notices a same-size corruption', async (t) => {
    const { registry, cache, dir } = await originCache(t);
    const first = found(await cache.package(keyOf('1.0.0'), sessionOf(cache, 'a').session));
    await truncate(first.file, first.size - 1000);
    // The next job's lookup finds the size wrong.
    const { session, notes } = sessionOf(cache, 'b');
    const again = found(await cache.package(keyOf('1.0.0'), session));
    assert.equal(zipRequests(registry).length, 2);
    assert.equal(again.size, first.size);
    assert.equal(await fileSha256(again.file), sha256Of(registry, '1.0.0'));
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /the cached registry\.outpost\.test\/outpost-test\/simple 1\.0\.0 \(.+\) was damaged \(its zip file has \d+ bytes, \d+ expected\); fetching it again/);
    assert.deepEqual(session.served, { fromCache: 0, downloaded: 1 });
    // Flip one byte in place and put the mtime back: same inode, size and mtime.
    const [original, bytes] = await Promise.all([stat(again.file), readFile(again.file)]);
    bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1);
    await writeFile(again.file, bytes); // truncates and rewrites: same inode
    await utimes(again.file, original.atime, original.mtime);
    const restarted = new ProviderStore(dir); // as a new process: nothing verified yet
    await restarted.open();
    const damage: string[] = [];
    assert.equal(await restarted.lookup(keyOf('1.0.0'), ({ reason }) => damage.push(reason)), undefined);
    assert.deepEqual(damage, ['its zip file does not match its recorded SHA-256']);
    assert.deepEqual(await restarted.list(), []);
  });

  it('evicts the least recently used package beyond the size limit, never a pinned one', async (t) => {
    const registry = await registryFor(t);
    const dispatcher = trusting(t, [registry.caPem]);
    const head = await request(`${registry.url}/files/outpost-test/simple/1.0.0/${zipName('1.0.0')}`, { method: 'HEAD', dispatcher });
    const size = Number(head.headers['content-length']);
    assert.ok(size > 1_000_000, `package of ${size} bytes`);
    const { cache, store } = await cacheOver([originFor(registry.url, dispatcher)], dispatcher, { sizeLimitBytes: Math.floor(size * 1.5) });
    const a = sessionOf(cache, 'a').session;
    const b = sessionOf(cache, 'b').session;
    found(await cache.package(keyOf('1.0.0'), a));
    found(await cache.package(keyOf('1.1.0'), b));
    await evictNow(cache);
    assert.deepEqual(await cachedVersions(store), ['1.0.0', '1.1.0'], 'both pinned: the cache stays over its limit');
    assert.ok(cache.isPinned(keyOf('1.0.0')));
    // Both jobs end: nothing is pinned, and the least recently used goes.
    cache.closeSession(a);
    cache.closeSession(b);
    assert.equal(cache.isPinned(keyOf('1.0.0')), false);
    await evictNow(cache);
    assert.deepEqual(await cachedVersions(store), ['1.1.0']);
  });

  it('keeps packages and their order of last use across a restart', async (t) => {
    const { registry, dispatcher, origin, cache, dir } = await originCache(t);
    const { session } = sessionOf(cache, 'job');
    const first = found(await cache.package(keyOf('1.0.0'), session));
    found(await cache.package(keyOf('1.1.0'), session));
    await sleep(20);
    found(await cache.package(keyOf('1.0.0'), session)); // now the most recently used
    assert.deepEqual(session.served, { fromCache: 1, downloaded: 2 });
    // The agent restarts over the same directory, with a limit that fits one package.
    const restarted = await cacheOver([origin], dispatcher, { dir, sizeLimitBytes: Math.floor(first.size * 1.5) });
    const listed = (await restarted.store.list()).sort((x, y) => x.lastUsedAt - y.lastUsedAt);
    assert.deepEqual(listed.map((each) => each.key.version), ['1.1.0', '1.0.0']);
    await restarted.cache.evict('agent start');
    assert.deepEqual(await cachedVersions(restarted.store), ['1.0.0']);
    const reused = found(await restarted.cache.package(keyOf('1.0.0'), sessionOf(restarted.cache, 'next').session));
    assert.equal(reused.hashes.zh, first.hashes.zh);
    assert.equal(zipRequests(registry).length, 2, 'nothing downloaded again after the restart');
  });

  it('tries network mirrors in order: reports a failing one, skips a silent 404 and a non-matching one, then uses the origin', async (t) => {
    const registry = await registryFor(t);
    const failing = await registryFor(t, { protocol: 'mirror' });
    failing.fault({ path: /./, status: 500, times: 100 });
    const elsewhere = await registryFor(t, { protocol: 'mirror', providers: [{ namespace: 'someone-else', type: 'simple', versions: ['1.0.0'] }] });
    const excluded = await serveDocuments(t, {});
    const dispatcher = trusting(t, [registry.caPem, failing.caPem, elsewhere.caPem, excluded.caPem]);
    const http = { dispatcher, requestTimeoutMs: 10_000 };
    const sources = [
      new NetworkMirrorSource({ url: excluded.url, include: ['registry.opentofu.org/*/*', `${hostname}/someone-else/*`] }, http),
      new NetworkMirrorSource({ url: `${failing.url}/` }, http),
      new NetworkMirrorSource({ url: `${elsewhere.url}/`, include: [`${hostname}/*/*`] }, http),
      originFor(registry.url, dispatcher),
    ];
    const { cache, dir } = await cacheOver(sources, dispatcher);
    const { session, notes } = sessionOf(cache, 'job');
    assert.deepEqual(await cache.versions(address, session), ['1.0.0', '1.1.0']);
    const result = found(await cache.package(keyOf('1.0.0'), session));
    assert.equal(await fileSha256(result.file), sha256Of(registry, '1.0.0'));
    assert.equal((await recordOf(dir, '1.0.0')).source, `registry ${hostname}`);
    assert.equal(notes.length, 2);
    for (const note of notes) {
      assert.ok(note.startsWith(`Outpost provider cache: network mirror ${failing.url}/: `), note);
      assert.match(note, /HTTP 500; used origin registry instead$/);
      assert.ok(!note.includes(elsewhere.url), note);
    }
    assert.deepEqual(excluded.paths, [], 'a mirror whose include patterns do not match is never asked');
    assert.deepEqual(failing.requests.map((each) => each.status), [500, 500]);
    const asked = `/${hostname}/outpost-test/simple`;
    assert.deepEqual(elsewhere.requests.map((each) => [each.path, each.status]), [[`${asked}/index.json`, 404], [`${asked}/1.0.0.json`, 404]]);
    assert.equal(zipRequests(registry).length, 1);
  });
});
