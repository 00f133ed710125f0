// Binary cache eviction on real directories: fake entries with chosen sizes
// (sparse files) and last use (the version directory's mtime).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cachedVersions, capturingLogger, DAY, fakeEntry, MiB, offlineCache, setLastUse } from './eviction.test-support.ts';

let scratch: string;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-eviction-'));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const freshDir = (): Promise<string> => mkdtemp(path.join(scratch, 'cache-'));

describe('binary cache eviction by age', () => {
  it('removes only the versions unused for longer than the threshold, and logs why', async () => {
    const dir = await freshDir();
    await fakeEntry(dir, { version: '1.6.0', mb: 1, daysAgo: 40 });
    await fakeEntry(dir, { version: '1.7.0', mb: 1, daysAgo: 29 });
    await fakeEntry(dir, { version: '1.8.0', mb: 1, daysAgo: 1 });
    await fakeEntry(dir, { engine: 'terraform', version: '1.5.7', mb: 1, daysAgo: 31 });
    const { logger, lines } = capturingLogger();
    const cache = await offlineCache(dir, { unusedThresholdMs: 30 * DAY, logger });

    const report = await cache.evict('test');

    assert.deepEqual(await cachedVersions(dir), ['opentofu/1.7.0', 'opentofu/1.8.0']);
    assert.deepEqual(report?.evicted.map((entry) => [`${entry.engine}/${entry.version}`, entry.reason]), [
      ['opentofu/1.6.0', 'unused'],
      ['terraform/1.5.7', 'unused'],
    ]);
    const logged = lines.filter((line) => line.msg.includes('evicted a version unused past the threshold'));
    assert.deepEqual(logged.map((line) => `${String(line.engine)}/${String(line.version)}`), ['opentofu/1.6.0', 'terraform/1.5.7']);
    assert.deepEqual(await readdir(path.join(dir, '.partial')), [], 'the moved-aside directories are deleted');
  });

  it('does nothing when both the threshold and the limit are 0', async () => {
    const dir = await freshDir();
    await fakeEntry(dir, { version: '1.6.0', mb: 50, daysAgo: 4000 });
    const cache = await offlineCache(dir, { unusedThresholdMs: 0, sizeLimitBytes: 0 });
    assert.equal(await cache.evict('test'), undefined);
    assert.deepEqual(await cachedVersions(dir), ['opentofu/1.6.0']);
  });
});

describe('binary cache eviction by size', () => {
  it('removes the least recently used versions first until the cache fits the limit', async () => {
    const dir = await freshDir();
    await fakeEntry(dir, { version: '1.6.0', mb: 2, daysAgo: 2 });
    await fakeEntry(dir, { version: '1.7.0', mb: 2, daysAgo: 4 });
    await fakeEntry(dir, { version: '1.8.0', mb: 2, daysAgo: 1 });
    await fakeEntry(dir, { engine: 'terraform', version: '1.5.7', mb: 2, daysAgo: 3 });
    const { logger, lines } = capturingLogger();
    const cache = await offlineCache(dir, { sizeLimitBytes: 5 * MiB, logger });

    const report = await cache.evict('test');

    assert.deepEqual(report?.evicted.map((entry) => [`${entry.engine}/${entry.version}`, entry.reason]), [
      ['opentofu/1.7.0', 'size_limit'],
      ['terraform/1.5.7', 'size_limit'],
    ]);
    assert.deepEqual(await cachedVersions(dir), ['opentofu/1.6.0', 'opentofu/1.8.0']);
    assert.equal(report?.totalBytes, 4 * MiB);
    assert.equal(lines.filter((line) => line.msg.includes('least recently used')).length, 2);
    assert.equal(lines.filter((line) => line.level >= 40).length, 0, 'no warning once the cache fits');
  });

  it('keeps a version a job holds, past both the threshold and the limit, and says so', async (t) => {
    const dir = await freshDir();
    const held = await fakeEntry(dir, { version: '1.6.0', mb: 3, daysAgo: 0 });
    await fakeEntry(dir, { version: '1.7.0', mb: 3, daysAgo: 1 });
    const { logger, lines } = capturingLogger();
    const cache = await offlineCache(dir, { sizeLimitBytes: 2 * MiB, unusedThresholdMs: 30 * DAY, logger });
    const lease = await cache.acquire({ name: 'opentofu', version: '1.6.0' }, () => undefined);
    assert.equal(lease.source, 'cache');

    // The job has now held the binary for 60 days: older than the threshold by any clock.
    await setLastUse(dir, 'opentofu', '1.6.0', 60);
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 60 * DAY });
    const report = await cache.evict('test');
    t.mock.timers.reset();

    assert.deepEqual(await cachedVersions(dir), ['opentofu/1.6.0']);
    assert.deepEqual(report?.evicted.map((entry) => entry.version), ['1.7.0']);
    assert.deepEqual(report?.keptInUse.map((entry) => entry.version), ['1.6.0']);
    assert.ok((await stat(held)).isFile());
    const warning = lines.find((line) => line.level === 40);
    assert.equal(warning?.msg, 'binary cache stays over its size limit: the versions left are in use by running jobs');
    assert.deepEqual(warning.inUse, ['opentofu/1.6.0']);
    assert.equal(warning.totalBytes, 3 * MiB);

    // Released, it is an ordinary entry again.
    lease.release();
    await cache.evict('test');
    assert.deepEqual(await cachedVersions(dir), []);
  });
});

describe('binary cache last use across an agent restart', () => {
  it('a new EngineCache on the same directory orders versions by the mtimes acquire() left', async () => {
    const dir = await freshDir();
    await fakeEntry(dir, { version: '1.6.0', mb: 2, daysAgo: 50 });
    await fakeEntry(dir, { version: '1.7.0', mb: 2, daysAgo: 3 });
    await fakeEntry(dir, { version: '1.8.0', mb: 2, daysAgo: 2 });
    const before = await offlineCache(dir);
    (await before.acquire({ name: 'opentofu', version: '1.6.0' }, () => undefined)).release();

    // The restarted agent has no memory of that acquire: only the directory's mtime.
    const restarted = await offlineCache(dir, { sizeLimitBytes: 4 * MiB, unusedThresholdMs: 30 * DAY });
    const report = await restarted.evict('agent start');

    assert.deepEqual(report?.evicted.map((entry) => entry.version), ['1.7.0']);
    assert.deepEqual(await cachedVersions(dir), ['opentofu/1.6.0', 'opentofu/1.8.0']);
  });
});
