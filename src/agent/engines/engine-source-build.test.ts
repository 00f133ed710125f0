// The last way to an engine: OpenTofu built from its Go module. These unit
// tests drive the engine cache and the builder with a fake `go` (a shell
// script that answers like Go and "builds" a tofu script), to check the
// decisions: when a build starts, that concurrent jobs share one build, that
// progress lines keep coming, what a failure says. The real Go build is
// exercised end to end by test/e2e/fresh-clone.test.ts.
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { tofuVersion } from '../../../test/support/toolchain.ts';
import { EngineCache } from './engine-cache.ts';
import { EngineSourceBuild } from './engine-source-build.ts';
import type { ReleaseMirror } from './release-mirror.test-support.ts';
import { closedPort, rejection, useReleaseMirror } from './release-mirror.test-support.ts';

let mirror: ReleaseMirror;
useReleaseMirror((started) => (mirror = started));

interface FakeGo {
  go: string;
  /** One line per `go build` the fake ran. */
  builds(): Promise<string[]>;
}

/**
 * A `go` that reports `goVersion`, "downloads" the module into a directory,
 * and for `build -o OUT PKG` sleeps `buildSeconds` (printing package paths
 * like `go build -v`) and writes a tofu script that reports `reports`.
 */
async function fakeGo(options: { goVersion?: string; buildSeconds?: number; reports?: string; fail?: boolean } = {}): Promise<FakeGo> {
  const dir = await mirror.freshDir('fake-go-');
  const log = path.join(dir, 'builds.log');
  const go = path.join(dir, 'go');
  const reports = options.reports ?? tofuVersion;
  await writeFile(
    go,
    `#!/bin/sh
case "$1" in
  env) echo "${options.goVersion ?? 'go1.26.0'}"; exit 0 ;;
  mod) echo '{"Path": "github.com/opentofu/opentofu", "Dir": "${dir}"}'; exit 0 ;;
  build)
    out=""; pkg=""
    while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2 ;; *) pkg="$1"; shift ;; esac; done
    echo "$pkg" >> "${log}"
    echo "go: downloading github.com/example/dependency v1.0.0" >&2
    i=0; while [ $i -lt ${options.buildSeconds ?? 0} ]; do echo "github.com/opentofu/opentofu/internal/p$i" >&2; sleep 1; i=$((i+1)); done
    ${options.fail ? 'echo "internal/command/x.go:3:1: syntax error" >&2; exit 1' : ''}
    printf '#!/bin/sh\\necho %s\\n' "'{\\"terraform_version\\": \\"${reports}\\"}'" > "$out"
    exit 0 ;;
esac
exit 2
`,
  );
  await chmod(go, 0o755);
  return { go, builds: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean) };
}

async function cacheWithBuild(go: string | undefined, progressEveryMs = 10_000) {
  const buildDir = await mirror.freshDir('build-');
  const sourceBuild = new EngineSourceBuild({
    dir: buildDir,
    go: { configured: go, searchPath: '', wellKnown: [] },
    logger: pino({ level: 'silent' }),
    progressEveryMs,
  });
  const down = `http://127.0.0.1:${await closedPort()}`;
  const cache = new EngineCache(mirror.options({ dir: await mirror.freshDir(), mirror: down, sourceBuild }));
  return { cache, buildDir, sourceBuild };
}

describe('EngineCache: OpenTofu built from source when nothing else works', () => {
  it('builds once for two jobs that ask at the same time, with progress lines in both logs, then reuses the binary', async () => {
    const { go, builds } = await fakeGo({ buildSeconds: 3 });
    const { cache, buildDir } = await cacheWithBuild(go, 1_000);
    const first: string[] = [];
    const second: string[] = [];
    const [a, b] = await Promise.all([
      cache.acquire({ name: 'opentofu', version: tofuVersion }, (line) => first.push(line)),
      cache.acquire({ name: 'opentofu', version: tofuVersion }, (line) => second.push(line)),
    ]);
    assert.equal(a.source, 'built');
    assert.equal(a.path, path.join(buildDir, `tofu-${tofuVersion}`));
    assert.equal(b.path, a.path);
    assert.deepEqual(await builds(), ['./cmd/tofu']);
    for (const notes of [first, second]) {
      const log = notes.join('\n');
      assert.match(log, new RegExp(`Building it from its Go module with go1\\.26\\.0 \\(${go}\\) into ${buildDir} instead\\. The first build takes about`), log);
      assert.match(log, /Still building OpenTofu [\d.]+: \d+ s, compiling \.\/cmd\/tofu; 1 modules downloaded, \d+ packages compiled/, log);
      assert.match(log, new RegExp(`Built OpenTofu [\\d.]+ in \\d+ s .*: ${buildDir}/tofu-`), log);
    }

    const later: string[] = [];
    const reused = await cache.acquire({ name: 'opentofu', version: tofuVersion }, (line) => later.push(line));
    assert.equal(reused.path, a.path);
    assert.match(later.join('\n'), /using .*tofu-[\d.]+, built earlier from its Go module/);
    assert.deepEqual(await builds(), ['./cmd/tofu'], 'the second acquire built again');
  });

  it('without Go, fails with engine_unavailable naming the three ways out, each with what to set or run', async () => {
    const { cache } = await cacheWithBuild(undefined);
    const error = await rejection(cache.acquire({ name: 'opentofu', version: tofuVersion }, () => undefined));
    assert.equal(error.code, 'engine_unavailable');
    assert.match(error.message, /no Go toolchain go1\.24 or newer was found to build it from source/);
    // A mirror is configured here (and down): the advice is about that mirror.
    assert.match(error.message, /\(1\) a mirror: make OUTPOST_AGENT_BINARY_MIRROR serve http:\/\/127\.0\.0\.1:\d+\/opentofu\//);
    assert.match(error.message, /\(2\) a binary: set OUTPOST_AGENT_ENGINE_PATH=/);
    assert.match(error.message, new RegExp(`\\(3\\) a build from source: install Go .* or run \`npx outpost engine build ${tofuVersion.replaceAll('.', '\\.')}\``));
  });

  it('skips a Go older than 1.24 and says so', async () => {
    const { go } = await fakeGo({ goVersion: 'go1.19.8' });
    const { cache } = await cacheWithBuild(go);
    const error = await rejection(cache.acquire({ name: 'opentofu', version: tofuVersion }, () => undefined));
    assert.match(error.message, new RegExp(`${go} is go1\\.19\\.8, older than go1\\.24`));
  });

  it('a failed build is engine_build_failed with what Go printed, and leaves no binary behind', async () => {
    const { go } = await fakeGo({ fail: true });
    const { cache, sourceBuild } = await cacheWithBuild(go);
    const error = await rejection(cache.acquire({ name: 'opentofu', version: tofuVersion }, () => undefined));
    assert.equal(error.code, 'engine_build_failed');
    assert.match(error.message, /`go build \.\/cmd\/tofu` failed \(exit code 1\): internal\/command\/x\.go:3:1: syntax error/);
    assert.equal(await sourceBuild.findBuilt(tofuVersion), undefined);
  });

  it('refuses a binary that reports another version than the one built', async () => {
    const { go } = await fakeGo({ reports: '1.10.10-dev' });
    const { cache, sourceBuild } = await cacheWithBuild(go);
    const error = await rejection(cache.acquire({ name: 'opentofu', version: tofuVersion }, () => undefined));
    assert.equal(error.code, 'engine_build_failed');
    assert.match(error.message, /reports version 1\.10\.10-dev/);
    assert.equal(await sourceBuild.findBuilt(tofuVersion), undefined);
  });

  it('never builds Terraform: the error says only OpenTofu can be built', async () => {
    const { go, builds } = await fakeGo();
    const { cache } = await cacheWithBuild(go);
    const error = await rejection(cache.acquire({ name: 'terraform', version: '1.5.7' }, () => undefined));
    assert.equal(error.code, 'engine_unavailable');
    assert.match(error.message, /Terraform cannot be built from source by the agent \(only OpenTofu can\)/);
    assert.match(error.message, /Take one of two ways/);
    assert.deepEqual(await builds(), []);
  });
});
