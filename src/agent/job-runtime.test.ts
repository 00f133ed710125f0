import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jobEntryModules, prepareJobRuntime } from './job-runtime.ts';

const appRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

test('the job runtime holds the job operation and its packages, and nothing else of the app', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-runtime-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const runtime = await prepareJobRuntime(appRoot, dataDir);
  assert.equal(path.dirname(runtime.root), path.join(dataDir, 'runtime'));
  assert.deepEqual((await readdir(runtime.root)).sort(), ['node_modules', 'package.json', 'src']);
  assert.deepEqual((await readdir(path.join(runtime.root, 'src'))).sort(), ['config', 'job', 'protocol']);
  const packages = await readdir(path.join(runtime.root, 'node_modules'));
  for (const needed of ['tar', 'zod']) assert.ok(packages.includes(needed), `${needed} missing: ${packages.join(', ')}`);
  for (const serverOnly of ['fastify', 'pg', 'kysely', 'dockerode']) assert.ok(!packages.includes(serverOnly), `${serverOnly} copied`);
  // Every module the operation imports resolves inside the runtime alone
  // (it lives outside the app, so nothing resolves from the app's node_modules).
  const loaded = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(path.join(runtime.root, 'src/job/main.ts'))}); console.log('loaded')`]);
  assert.equal(loaded.stdout.trim(), 'loaded');
  // The same version is reused, not copied again.
  assert.deepEqual(await prepareJobRuntime(appRoot, dataDir), runtime);
});

// The shipped agent runs from dist/ (`npm run build`, which `npm test` runs
// before the tests); its sandboxes get the bundled operation: one file, no
// TypeScript, no node_modules.
const built = await stat(path.join(appRoot, jobEntryModules.bundled)).then(() => true, () => false);
test('from the build, the runtime is the bundled job operation alone, which starts', { skip: built ? false : 'dist/ is not built (npm run build)' }, async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-runtime-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const runtime = await prepareJobRuntime(appRoot, dataDir, jobEntryModules.bundled);
  assert.equal(runtime.entry, path.join(runtime.root, 'dist/job/operation.mjs'));
  assert.deepEqual((await readdir(runtime.root)).sort(), ['dist', 'package.json']);
  assert.deepEqual(await readdir(path.join(runtime.root, 'dist/job')), ['operation.mjs']);
  // Without its environment the operation reports that and fails: it loaded and ran.
  const started = await promisify(execFile)(process.execPath, [runtime.entry], { env: { PATH: process.env.PATH } }).then(
    () => assert.fail('the job operation succeeded without a job'),
    (error: { code: number; stdout: string }) => error,
  );
  assert.equal(started.code, 1, started.stdout);
  assert.match(started.stdout, /outpost job was started without a usable environment/);
});
