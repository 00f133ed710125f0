// The engine cache when the release cannot be downloaded: a local binary of
// exactly the requested version, or engine_unavailable saying how to fix it.
import assert from 'node:assert/strict';
import { mkdtemp, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tofuBinary, tofuVersion } from '../../../test/support/toolchain.ts';
import type { ReleaseMirror} from './release-mirror.test-support.ts';
import { closedPort, rejection, sumsPath, zipPath, useReleaseMirror } from './release-mirror.test-support.ts';

let mirror: ReleaseMirror;

useReleaseMirror((started) => (mirror = started), { resetEachTest: true });

describe('EngineCache fallback to a local binary', () => {
  it('uses OUTPOST_AGENT_ENGINE_PATH (a binary) when the mirror answers 404', async () => {
    mirror.routes.set(zipPath, { status: 404, body: 'gone' });
    const notes: string[] = [];
    const lease = await mirror.acquire({ localPath: tofuBinary() }, notes);

    assert.equal(lease.source, 'local');
    assert.equal(lease.path, tofuBinary());
    assert.ok(
      notes.includes(
        `Could not download OpenTofu ${tofuVersion} (${mirror.url}${zipPath}: HTTP 404); ` +
          `using ${tofuBinary()} (OUTPOST_AGENT_ENGINE_PATH), which reports version ${tofuVersion}`,
      ),
      notes.join('\n'),
    );
  });

  it('uses a directory holding tofu when the SHA256SUMS request fails with 500', async () => {
    mirror.routes.set(sumsPath, { status: 500, body: 'broken' });
    const directory = await mkdtemp(path.join(mirror.scratch, 'engine-dir-'));
    await symlink(tofuBinary(), path.join(directory, 'tofu'));
    const notes: string[] = [];
    const lease = await mirror.acquire({ localPath: directory }, notes);

    assert.equal(lease.source, 'local');
    assert.equal(lease.path, path.join(directory, 'tofu'));
    assert.match(notes.join('\n'), /Could not download OpenTofu .* \(http:.*SHA256SUMS: HTTP 500\); using/);
  });

  it('skips a local binary of another version and uses the matching one on PATH', async () => {
    mirror.routes.clear();
    const wrong = await mirror.fakeTofu('1.9.0');
    const onPath = await mkdtemp(path.join(mirror.scratch, 'path-'));
    await symlink(tofuBinary(), path.join(onPath, 'tofu'));
    const notes: string[] = [];
    const lease = await mirror.acquire({ searchPath: [path.dirname(wrong), onPath].join(path.delimiter) }, notes);

    assert.equal(lease.path, path.join(onPath, 'tofu'));
    assert.ok(notes.includes(`Not using ${wrong} (on PATH): it reports version 1.9.0, not ${tofuVersion}`), notes.join('\n'));
    assert.match(notes.join('\n'), /\(on PATH\), which reports version/);
  });

  it('never uses a local binary of another version', async () => {
    mirror.routes.clear();
    const wrong = await mirror.fakeTofu('1.9.0');
    const error = await rejection(mirror.acquire({ localPath: wrong, searchPath: path.dirname(wrong) }));
    assert.equal(error.code, 'engine_unavailable');
    assert.match(error.message, /local binaries were not usable \(Not using .* it reports version 1\.9\.0/);
  });

  it('falls back when the download times out', async () => {
    mirror.routes.set(zipPath, { status: 200, hang: true });
    const notes: string[] = [];
    const lease = await mirror.acquire({ localPath: tofuBinary(), downloadTimeoutMs: 300 }, notes);
    assert.equal(lease.source, 'local');
    assert.match(notes.join('\n'), /\(http:.*\.zip: timed out after 300ms\)/);
  });

  it('fails with engine_unavailable and how to fix it when nothing is usable, without leaking credentials', async () => {
    const down = `http://outpost:s3cret@127.0.0.1:${await closedPort()}/releases`;
    const error = await rejection(mirror.acquire({ mirror: down }));

    assert.equal(error.code, 'engine_unavailable');
    assert.match(error.message, /connection refused/);
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:\\d+/releases/opentofu/${tofuVersion}/tofu_${tofuVersion}_SHA256SUMS`));
    assert.match(error.message, /OUTPOST_AGENT_BINARY_MIRROR/);
    assert.match(error.message, new RegExp(`OUTPOST_AGENT_ENGINE_PATH=/path/to/tofu \\(a tofu that reports version ${tofuVersion.replaceAll('.', '\\.')}\\)`));
    assert.match(error.message, /Take one of three ways: \(1\) a mirror: .* \(2\) a binary: .* \(3\) a build from source: /);
    assert.match(error.message, new RegExp(`npx outpost engine build ${tofuVersion.replaceAll('.', '\\.')}`));
    assert.match(error.message, /on the agent's PATH/);
    assert.doesNotMatch(error.message, /s3cret|outpost:/);
  });

  it('rejects a version that is not a release version before any request', async () => {
    for (const version of ['../../etc', '1.10', 'latest', '1.10.10/../x', '1.10.10+build']) {
      const error = await rejection(mirror.acquire({}, [], { name: 'opentofu', version }));
      assert.equal(error.code, 'engine_unavailable');
    }
    assert.deepEqual(mirror.requests, []);
  });
});
