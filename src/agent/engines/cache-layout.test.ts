import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { findInstalled, partialDir, partialPath, publishEntry, removeStalePartials } from './cache-layout.ts';

let scratch: string;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-cache-layout-'));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function staged(dir: string, content: string): Promise<string> {
  const staging = partialPath(dir, 'opentofu', '1.10.10');
  await mkdir(staging, { recursive: true });
  await writeFile(path.join(staging, 'tofu'), content);
  return staging;
}

it('publishes a staging directory as the version directory', async () => {
  const dir = await mkdtemp(path.join(scratch, 'cache-'));
  assert.equal(await findInstalled(dir, 'opentofu', '1.10.10'), undefined);
  const binary = await publishEntry(dir, 'opentofu', '1.10.10', await staged(dir, 'ours'));
  assert.equal(binary, path.join(dir, 'opentofu', '1.10.10', 'tofu'));
  assert.equal(await findInstalled(dir, 'opentofu', '1.10.10'), binary);
  assert.deepEqual(await readdir(partialDir(dir)), []);
});

it('keeps the entry another process published first and discards its own', async () => {
  const dir = await mkdtemp(path.join(scratch, 'cache-'));
  await publishEntry(dir, 'opentofu', '1.10.10', await staged(dir, 'theirs'));
  const binary = await publishEntry(dir, 'opentofu', '1.10.10', await staged(dir, 'ours'));
  assert.equal(await readFile(binary, 'utf8'), 'theirs');
  assert.deepEqual(await readdir(partialDir(dir)), []);
});

it('removes only partial downloads older than the limit', async () => {
  const dir = await mkdtemp(path.join(scratch, 'cache-'));
  await mkdir(partialDir(dir), { recursive: true });
  const old = path.join(partialDir(dir), 'opentofu-1.10.10-1-old.zip');
  const fresh = path.join(partialDir(dir), 'opentofu-1.10.10-2-new.zip');
  await writeFile(old, 'crashed');
  await writeFile(fresh, 'in progress');
  const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60_000);
  await utimes(old, twoHoursAgo, twoHoursAgo);
  await removeStalePartials(dir, 60 * 60_000);
  assert.deepEqual(await readdir(partialDir(dir)), ['opentofu-1.10.10-2-new.zip']);
});
