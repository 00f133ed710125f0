// The engine cache downloading from a local mirror that serves a real OpenTofu
// release zip: real downloads, verification, extraction, and `tofu version -json`.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tofuBinary, tofuVersion } from '../../../test/support/toolchain.ts';
import { EngineCache } from './engine-cache.ts';
import type {
  ReleaseMirror} from './release-mirror.test-support.ts';
import {
  rejection,
  reportedVersion,
  sumsName,
  sumsPath,
  tofuRef,
  zipName,
  zipPath,
  useReleaseMirror,
} from './release-mirror.test-support.ts';

let mirror: ReleaseMirror;

useReleaseMirror((started) => (mirror = started), { resetEachTest: true });

describe('EngineCache downloads', () => {
  it('downloads, verifies and installs a release, and the installed binary runs', async () => {
    const dir = await mirror.freshDir();
    const notes: string[] = [];
    const lease = await new EngineCache(mirror.options({ dir })).acquire(tofuRef, (line) => notes.push(line));

    assert.equal(lease.source, 'download');
    assert.equal(lease.path, path.join(dir, 'opentofu', tofuVersion, 'tofu'));
    assert.equal((await stat(lease.path)).mode & 0o777, 0o755);
    assert.equal(await reportedVersion(lease.path), tofuVersion);
    assert.deepEqual(await readdir(path.join(dir, 'opentofu', tofuVersion)), ['tofu'], 'only the binary is extracted');
    assert.deepEqual(await readdir(path.join(dir, '.partial')), [], 'no temporary files remain');
    assert.match(notes.join('\n'), new RegExp(`Downloading OpenTofu ${tofuVersion} from ${mirror.url}${zipPath}`));
    assert.match(notes.join('\n'), /SHA-256 verified/);
    assert.equal(mirror.countOf(zipPath), 1);
  });

  it('serves a second acquire from the cache without a request, also after a restart', async () => {
    const dir = await mirror.freshDir();
    const cache = new EngineCache(mirror.options({ dir }));
    await cache.acquire(tofuRef, () => undefined);
    mirror.requests.length = 0;

    const notes: string[] = [];
    const again = await cache.acquire(tofuRef, (line) => notes.push(line));
    const restarted = await new EngineCache(mirror.options({ dir })).acquire(tofuRef, () => undefined);

    assert.equal(again.source, 'cache');
    assert.equal(restarted.source, 'cache');
    assert.deepEqual(notes, [`Using OpenTofu ${tofuVersion} from the agent's binary cache`]);
    assert.deepEqual(mirror.requests, []);
  });

  it('shares one download between concurrent acquires of the same version', async () => {
    const dir = await mirror.freshDir();
    const cache = new EngineCache(mirror.options({ dir }));
    const notes: [string[], string[], string[]] = [[], [], []];
    const leases = await Promise.all(notes.map((lines) => cache.acquire(tofuRef, (line) => lines.push(line))));

    assert.equal(mirror.countOf(zipPath), 1);
    assert.equal(mirror.countOf(sumsPath), 1);
    assert.deepEqual(new Set(leases.map((lease) => lease.path)), new Set([path.join(dir, 'opentofu', tofuVersion, 'tofu')]));
    // Which call starts the download depends on I/O order; the others wait for it.
    const started = notes.filter((lines) => lines.some((line) => line.startsWith('Downloading OpenTofu')));
    const waited = notes.filter((lines) => lines.some((line) => line.startsWith('Waiting for the download of OpenTofu')));
    assert.equal(started.length, 1);
    assert.equal(waited.length, 2);
  });

  it('follows redirects, as GitHub release downloads answer with one', async () => {
    mirror.routes.set(zipPath, { status: 302, location: '/storage/release.zip' });
    mirror.routes.set('/storage/release.zip', { status: 200, file: mirror.releaseZip });
    const lease = await new EngineCache(mirror.options({ dir: await mirror.freshDir() })).acquire(tofuRef, () => undefined);
    assert.equal(lease.source, 'download');
    assert.equal(mirror.countOf('/storage/release.zip'), 1);
  });

  it('counts leases per version until they are released', async () => {
    const cache = new EngineCache(mirror.options({ dir: await mirror.freshDir() }));
    const first = await cache.acquire(tofuRef, () => undefined);
    const second = await cache.acquire(tofuRef, () => undefined);
    assert.equal(cache.usageSnapshot()[0]?.inUse, 2);
    first.release();
    first.release(); // a second release of the same lease changes nothing
    assert.equal(cache.usageSnapshot()[0]?.inUse, 1);
    second.release();
    assert.equal(cache.usageSnapshot()[0]?.inUse, 0);
  });
});

describe('EngineCache verification', () => {
  it('refuses a zip whose checksum does not match, installs nothing, and does not fall back', async () => {
    const dir = await mirror.freshDir();
    const corrupted = path.join(mirror.scratch, 'corrupted.zip');
    const bytes = await readFile(mirror.releaseZip);
    const middle = bytes.length >> 1;
    bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
    await writeFile(corrupted, bytes);
    mirror.routes.set(zipPath, { status: 200, file: corrupted });

    const cache = new EngineCache(mirror.options({ dir, localPath: tofuBinary() }));
    const notes: string[] = [];
    const error = await rejection(cache.acquire(tofuRef, (line) => notes.push(line)));

    assert.equal(error.code, 'engine_checksum_mismatch');
    assert.match(error.message, new RegExp(`${zipName} downloaded from .* has SHA-256 [0-9a-f]{64}, but ${sumsName} lists`));
    await assert.rejects(stat(path.join(dir, 'opentofu', tofuVersion)), { code: 'ENOENT' });
    assert.deepEqual(await readdir(path.join(dir, '.partial')), []);
    assert.doesNotMatch(notes.join('\n'), /using .*OUTPOST_AGENT_ENGINE_PATH/);
  });

  it('refuses a release whose SHA256SUMS has no line for the zip, before fetching the zip', async () => {
    mirror.routes.set(sumsPath, { status: 200, body: `${'1'.repeat(64)}  tofu_${tofuVersion}_windows_amd64.zip\n` });
    const error = await rejection(new EngineCache(mirror.options({ dir: await mirror.freshDir() })).acquire(tofuRef, () => undefined));
    assert.equal(error.code, 'engine_checksum_mismatch');
    assert.match(error.message, new RegExp(`has no checksum for ${zipName}`));
    assert.equal(mirror.countOf(zipPath), 0);
  });
});

describe('EngineCache with debris from a crash', () => {
  it('ignores a half-written download and a damaged version directory', async () => {
    const dir = await mirror.freshDir();
    await mkdir(path.join(dir, '.partial'), { recursive: true });
    await writeFile(path.join(dir, '.partial', `opentofu-${tofuVersion}-1-dead.zip`), 'half a zip');
    await mkdir(path.join(dir, 'opentofu', tofuVersion), { recursive: true });
    await writeFile(path.join(dir, 'opentofu', tofuVersion, 'leftover'), '');

    const lease = await new EngineCache(mirror.options({ dir })).acquire(tofuRef, () => undefined);
    assert.equal(lease.source, 'download');
    assert.equal(await reportedVersion(lease.path), tofuVersion);
  });
});
