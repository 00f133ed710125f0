// reportedVersion() asks a binary once and remembers the answer for as long
// as the file is the same file; a replaced binary is asked again.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { reportedVersion } from './local-engine.ts';

const scratch = await mkdtemp(path.join(os.tmpdir(), 'local-engine-'));
after(() => rm(scratch, { recursive: true, force: true }));

/** A stand-in engine that prints `version` and counts how often it was started. */
async function writeEngine(file: string, version: string, exitCode = 0): Promise<void> {
  const counter = `${file}.starts`;
  const staged = `${file}.new`;
  await writeFile(staged, `#!/bin/sh\necho x >> '${counter}'\necho '{"terraform_version": "${version}"}'\nexit ${exitCode}\n`);
  await chmod(staged, 0o755);
  // A new file, as an upgrade by a package manager would leave it.
  await rename(staged, file);
}

async function binaryPath(name: string): Promise<string> {
  await mkdir(path.join(scratch, name));
  return path.join(scratch, name, 'tofu');
}

async function starts(file: string): Promise<number> {
  return (await readFile(`${file}.starts`, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

describe('reportedVersion', () => {
  it('asks an unchanged binary once', async () => {
    const binary = await binaryPath('same');
    await writeEngine(binary, '1.10.10');

    assert.deepEqual(await reportedVersion(binary, undefined), { ok: true, version: '1.10.10' });
    assert.deepEqual(await reportedVersion(binary, undefined), { ok: true, version: '1.10.10' });
    assert.equal(await starts(binary), 1);
  });

  it('asks again once the binary is replaced', async () => {
    const binary = await binaryPath('replaced');
    await writeEngine(binary, '1.9.0');
    assert.deepEqual(await reportedVersion(binary, undefined), { ok: true, version: '1.9.0' });

    await writeEngine(binary, '1.10.10');
    assert.deepEqual(await reportedVersion(binary, undefined), { ok: true, version: '1.10.10' });
    assert.equal(await starts(binary), 2);
  });

  it('does not remember a failure', async () => {
    const binary = await binaryPath('failing');
    await writeEngine(binary, '1.10.10', 3);

    assert.deepEqual(await reportedVersion(binary, undefined), { ok: false, reason: 'exit code 3' });
    assert.deepEqual(await reportedVersion(binary, undefined), { ok: false, reason: 'exit code 3' });
    assert.equal(await starts(binary), 2);
  });
});
