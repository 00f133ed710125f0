// README's promise, as a new user meets it: in a fresh copy of the
// repository, `npm ci && npm start` ends in an applied run, on a machine with
// no OpenTofu anywhere and no release site within reach. The agent then
// builds OpenTofu from its Go module (through the Go module proxy) into an
// empty toolchain cache; a second `npm start` reuses that binary. Ctrl-C, as a
// terminal sends it to the whole foreground job, ends `npm start` with 0.
//
// What is fresh: the working copy (the tracked files, as a clone holds
// them), HOME (so ~/.cache/outpost and Go's module cache start empty: every
// module is downloaded through the proxy), the quickstart's data. What is
// not: npm's download cache (the registry is the same either way) and Go's
// build cache, which CI's tofu phase has filled with the same packages: a
// cold compile would add four minutes of both cores and test nothing more of
// ours. The release site: unreachable on CI machines; where it resolves,
// the agent is pointed at a closed port instead, so the fallback is what runs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findGoToolchain } from '../../src/agent/engines/go-toolchain.ts';
import { freePort } from '../support/ports.ts';
import { logTail, readLog, spawnLogged, type SpawnedProcess } from '../support/spawned-process.ts';
import { tofuVersion } from '../support/toolchain.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const inCi = process.env.CI === 'true';

const go = await findGoToolchain({ configured: undefined, searchPath: process.env.PATH });
const skip = go.found === undefined && `no Go toolchain go1.24+ to build OpenTofu with (${go.skipped.join('; ') || 'none found'})`;
if (skip && inCi) throw new Error(`CI must run the fresh-clone test: ${skip}`);

test('fresh clone, no OpenTofu, no release site: `npm ci && npm start` builds OpenTofu from source and applies the example; a second start reuses the build', { skip, timeout: 20 * 60_000 }, async (t) => {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-fresh-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const clone = path.join(scratch, 'outpost');
  const home = path.join(scratch, 'home');
  await mkdir(home);
  await copyTrackedFiles(repoRoot, clone);

  const env = await freshUserEnvironment(home);
  const npmCi = spawnLogged({ command: 'npm', args: ['ci', '--prefer-offline', '--no-audit', '--no-fund'], env, cwd: clone, logFile: path.join(scratch, 'npm-ci.log') });
  t.after(() => npmCi.killGroup());
  assert.equal(await npmCi.exited, 0, logTail(path.join(scratch, 'npm-ci.log')));

  const firstLog = path.join(scratch, 'npm-start-1.log');
  const first = await startUntilApplied(t, clone, env, firstLog);
  const output = readLog(firstLog);
  assert.match(output, new RegExp(`Could not download OpenTofu ${escaped(tofuVersion)} \\(.+\\), and no local tofu ${escaped(tofuVersion)} was found\\. Building it from its Go module`), output);
  assert.match(output, /The first build takes about 4 minutes on 2 cores/, output);
  assert.match(output, new RegExp(`Built OpenTofu ${escaped(tofuVersion)} in .*: ${escaped(home)}/\\.cache/outpost/tofu-${escaped(tofuVersion)}`), output);
  assert.match(output, /Run run-\w+ applied: 1 added, 0 changed, 0 destroyed\./, output);
  assert.match(output, /greeting = "Hello from Outpost!"/, output);
  assert.ok(existsSync(path.join(home, '.cache', 'outpost', `tofu-${tofuVersion}`)), 'the built binary is not in the toolchain cache');
  assert.equal(await interrupt(first), 0, logTail(firstLog));

  // The same user starts it again: the binary built the first time is used.
  const secondLog = path.join(scratch, 'npm-start-2.log');
  const second = await startUntilApplied(t, clone, env, secondLog);
  const again = readLog(secondLog);
  assert.match(again, new RegExp(`using ${escaped(home)}/\\.cache/outpost/tofu-${escaped(tofuVersion)}, built earlier from its Go module`), again);
  assert.doesNotMatch(again, /Building it from its Go module/, again);
  // The example changes nothing the second time: its run finishes at the plan.
  assert.match(again, /Run run-\w+ finished: no changes\./, again);
  assert.equal(await interrupt(second), 0, logTail(secondLog));
});

/** What a clone holds: the files git tracks (and new ones not yet ignored), nothing built, no node_modules. */
async function copyTrackedFiles(from: string, to: string): Promise<void> {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: from, encoding: 'utf8' });
  for (const file of listed.split('\0').filter(Boolean)) {
    if (!existsSync(path.join(from, file))) continue; // deleted in the working tree, not yet committed
    await mkdir(path.dirname(path.join(to, file)), { recursive: true });
    await cp(path.join(from, file), path.join(to, file), { verbatimSymlinks: true });
  }
}

/**
 * A new user's environment: a fresh HOME, a PATH with no tofu on it, no
 * Outpost settings, and (only where the release site resolves) a release
 * mirror that refuses connections.
 */
async function freshUserEnvironment(home: string): Promise<Record<string, string>> {
  const pathWithoutTofu = (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter).filter((dir) => !existsSync(path.join(dir, 'tofu'))).join(path.delimiter);
  const realCache = (name: string) => execFileSync(go.found!.path, ['env', name], { encoding: 'utf8' }).trim();
  const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
  const releaseSiteResolves = await lookup('github.com').then(() => true, () => false);
  return {
    PATH: pathWithoutTofu,
    HOME: home,
    LANG: 'C.UTF-8',
    npm_config_cache: npmCache,
    GOCACHE: realCache('GOCACHE'),
    ...(process.env.GOPROXY ? { GOPROXY: process.env.GOPROXY } : {}),
    // Port 0: tests run side by side, and 8480 may be taken.
    OUTPOST_LISTEN: '127.0.0.1:0',
    ...(releaseSiteResolves ? { OUTPOST_AGENT_BINARY_MIRROR: `http://127.0.0.1:${await freePort()}` } : {}),
  };
}

async function startUntilApplied(t: { after: (fn: () => unknown) => void }, cwd: string, env: Record<string, string>, logFile: string): Promise<SpawnedProcess> {
  const started = spawnLogged({ command: 'npm', args: ['start'], env, cwd, logFile });
  t.after(() => started.killGroup());
  const deadline = Date.now() + 15 * 60_000;
  while (!readLog(logFile).includes('Press Ctrl-C to stop.')) {
    if (started.hasExited()) assert.fail(`npm start exited before the example ended:\n${logTail(logFile)}`);
    if (Date.now() > deadline) assert.fail(`npm start did not finish the example in 15 minutes:\n${logTail(logFile)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return started;
}

/** Ctrl-C as a terminal sends it: SIGINT to every process of the job. */
async function interrupt(started: SpawnedProcess): Promise<number | null> {
  started.signalGroup('SIGINT');
  const settled = await Promise.race([started.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 60_000))]);
  if (settled === 'hung') assert.fail('npm start did not exit within a minute of Ctrl-C');
  return settled;
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
