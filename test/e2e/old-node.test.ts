// An entry point started by a Node.js older than 24 (the machine's own, a
// global install) says so in one line and exits 1, instead of crashing on
// the first API it lacks. The images start Outpost through the same
// bin/outpost.js, so this covers their entrypoints too.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/outpost.js', import.meta.url));

/** The first node binary on this machine older than 24, with its version. */
function olderNode(): { path: string; version: string } | undefined {
  const candidates = [
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'node')),
    '/usr/bin/node',
    '/usr/bin/nodejs',
    '/usr/local/bin/node',
  ];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) continue;
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim().replace(/^v/, '');
      if (Number(version.split('.')[0]) < 24) return { path: candidate, version };
    } catch {
      // Not runnable: not a candidate.
    }
  }
  return undefined;
}

const old = olderNode();

test('bin/outpost.js on an older Node prints one sentence and exits 1, for every command', { skip: old === undefined && 'no Node.js older than 24 on this machine' }, () => {
  for (const args of [['server'], ['agent', 'run'], ['quickstart'], ['--version'], ['run', 'list', '--workspace', 'w']]) {
    const result = spawnSync(old!.path, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 });
    assert.equal(result.status, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(
      result.stderr,
      `Outpost needs Node.js 24 or newer; this is Node ${old!.version}. Run it through \`npx outpost\` in the project, or install Node 24.\n`,
    );
    assert.equal(result.stdout, '');
  }
});

test('bin/outpost.js on the project\'s Node 24 runs the command', () => {
  const result = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
});
