// Eviction through EngineCache: racing acquire() of the same version, and the
// real OpenTofu release from the local mirror downloaded again once evicted.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { tofuVersion } from '../../../test/support/toolchain.ts';
import { OutpostError } from '../../protocol/errors.ts';
import type { EngineLease } from './engine-cache.ts';
import { EngineCache } from './engine-cache.ts';
import { cachedVersions, capturingLogger, DAY, fakeEntry, MiB, offlineCache, setLastUse } from './eviction.test-support.ts';
import type { ReleaseMirror} from './release-mirror.test-support.ts';
import { reportedVersion, tofuRef, zipPath, useReleaseMirror } from './release-mirror.test-support.ts';

let mirror: ReleaseMirror;

useReleaseMirror((started) => (mirror = started));

describe('eviction racing acquire() of the same version', () => {
  it('never hands out a path that eviction removes', async () => {
    const outcomes = { cache: 0, evicted: 0 };
    // The acquire starts a varying number of event-loop turns after the
    // eviction, so it lands before, during and after the listing and the rename.
    for (let turns = 0; turns < 40; turns++) {
      const dir = await mirror.freshDir('race-');
      await fakeEntry(dir, { version: tofuVersion, mb: 1, daysAgo: 40 });
      const cache = await offlineCache(dir, { unusedThresholdMs: 30 * DAY });

      const eviction = cache.evict('test');
      for (let turn = 0; turn < turns; turn++) await nextTurn();
      const acquired: EngineLease | Error = await cache.acquire(tofuRef, () => undefined).catch((error: unknown) => error as Error);
      const report = await eviction;

      if (acquired instanceof Error) {
        // Evicted first; the offline cache could not download it again.
        assert.ok(acquired instanceof OutpostError && acquired.code === 'engine_unavailable', String(acquired));
        assert.deepEqual(report?.evicted.map((entry) => entry.version), [tofuVersion]);
        assert.deepEqual(await cachedVersions(dir), []);
        outcomes.evicted++;
        continue;
      }
      assert.equal(acquired.source, 'cache');
      assert.deepEqual(report?.evicted, [], `turn ${turns}: eviction removed the version acquire() handed out`);
      assert.ok((await stat(acquired.path)).isFile(), `turn ${turns}: ${acquired.path} disappeared`);
      // While the lease is held, later evictions keep it too.
      await setLastUse(dir, 'opentofu', tofuVersion, 40);
      await cache.evict('test');
      assert.ok((await stat(acquired.path)).isFile());
      acquired.release();
      outcomes.cache++;
    }
    // Both orders occur: otherwise the loop did not race anything.
    assert.ok(outcomes.cache > 0 && outcomes.evicted > 0, JSON.stringify(outcomes));
  });
});

describe('eviction of a real download', () => {
  it('downloads the release again after its version was evicted', async (t) => {
    mirror.serveRelease();
    const dir = await mirror.freshDir();
    const { logger, lines } = capturingLogger();
    const cache = new EngineCache(mirror.options({ dir, logger, unusedThresholdMs: 30 * DAY }));
    const first = await cache.acquire(tofuRef, () => undefined);
    assert.equal(first.source, 'download');
    first.release();

    // 31 days later by the clock eviction reads (the mtime and the in-memory last use are real now).
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 31 * DAY });
    const report = await cache.evict('test');
    t.mock.timers.reset();
    assert.deepEqual(report?.evicted.map((entry) => entry.version), [tofuVersion]);
    assert.ok((report?.evicted[0]?.bytes ?? 0) > MiB, 'the size of the real binary is counted');
    assert.deepEqual(await cachedVersions(dir), []);
    assert.ok(lines.some((line) => line.msg.includes('evicted a version unused past the threshold') && line.version === tofuVersion));

    const second = await cache.acquire(tofuRef, () => undefined);
    assert.equal(second.source, 'download');
    assert.equal(second.path, path.join(dir, 'opentofu', tofuVersion, 'tofu'));
    assert.equal(mirror.countOf(zipPath), 2);
    assert.equal(await reportedVersion(second.path), tofuVersion);
    second.release();
  });

  it('runs after a download and keeps the version just downloaded for its job, even over the limit', async () => {
    mirror.serveRelease();
    const dir = await mirror.freshDir();
    await fakeEntry(dir, { version: '1.6.0', mb: 1, daysAgo: 1 });
    const { logger, lines } = capturingLogger();
    const cache = new EngineCache(mirror.options({ dir, logger, sizeLimitBytes: MiB }));
    const lease = await cache.acquire(tofuRef, () => undefined);
    await cache.evict('test'); // runs after the one the download started

    assert.deepEqual(await cachedVersions(dir), [`opentofu/${tofuVersion}`]);
    assert.ok((await stat(lease.path)).isFile());
    const afterDownload = lines.filter((line) => line.trigger === 'download');
    assert.ok(afterDownload.some((line) => line.version === '1.6.0' && line.reason === 'size_limit'), JSON.stringify(afterDownload));
    assert.ok(afterDownload.some((line) => line.level === 40 && (line.inUse as string[]).includes(`opentofu/${tofuVersion}`)));
    lease.release();
  });
});
