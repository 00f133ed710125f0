import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import yazl from 'yazl';
import { extractBinary, ReleaseZipInvalid } from './release-zip.ts';

let scratch: string;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-release-zip-'));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function makeZip(entries: { name: string; body: string; mode?: number }[]): Promise<string> {
  const file = path.join(scratch, `${entries.map((entry) => entry.name.replace(/\W/g, '_')).join('-')}.zip`);
  const zip = new yazl.ZipFile();
  for (const entry of entries) zip.addBuffer(Buffer.from(entry.body), entry.name, { mode: entry.mode ?? 0o100644 });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(file)).on('finish', resolve).on('error', reject);
  });
  return file;
}

it('writes only the top-level binary, executable', async () => {
  const zip = await makeZip([
    { name: 'LICENSE', body: 'license' },
    { name: 'tofu', body: 'binary', mode: 0o100644 },
  ]);
  const out = await mkdtemp(path.join(scratch, 'out-'));
  await extractBinary(zip, 'tofu', path.join(out, 'tofu'));
  assert.deepEqual(await readdir(out), ['tofu']);
  assert.equal(await readFile(path.join(out, 'tofu'), 'utf8'), 'binary');
  assert.equal((await stat(path.join(out, 'tofu'))).mode & 0o777, 0o755);
});

it('does not take the binary from a subdirectory', async () => {
  const zip = await makeZip([{ name: 'bin/tofu', body: 'nested' }]);
  const out = await mkdtemp(path.join(scratch, 'out-'));
  await assert.rejects(extractBinary(zip, 'tofu', path.join(out, 'tofu')), /has no tofu executable at its top level/);
  assert.deepEqual(await readdir(out), []);
});

it('rejects an archive with an entry escaping through ..', async () => {
  // yazl refuses to write `../tofu`, so write `aa/tofu` and rename it in the
  // local header and the central directory (names are not covered by the CRC).
  const made = await makeZip([
    { name: 'aa/tofu', body: 'escape' },
    { name: 'tofu', body: 'binary' },
  ]);
  const bytes = await readFile(made);
  const crafted = Buffer.from(bytes.toString('latin1').replaceAll('aa/tofu', '../tofu'), 'latin1');
  assert.notDeepEqual(crafted, bytes);
  const zip = path.join(scratch, 'escape.zip');
  await writeFile(zip, crafted);
  const out = await mkdtemp(path.join(scratch, 'out-'));
  await assert.rejects(
    extractBinary(zip, 'tofu', path.join(out, 'tofu')),
    (error) => error instanceof ReleaseZipInvalid && /invalid relative path: \.\.\/tofu/.test(error.message),
  );
  assert.ok(!(await readdir(scratch)).includes('tofu'), 'nothing was written next to the output directory');
});

it('refuses a binary entry that is a symbolic link', async () => {
  const zip = await makeZip([{ name: 'tofu', body: '/etc/passwd', mode: 0o120777 }]);
  const out = await mkdtemp(path.join(scratch, 'out-'));
  await assert.rejects(extractBinary(zip, 'tofu', path.join(out, 'tofu')), /is not a regular file/);
});

it('reports a file that is not a zip', async () => {
  const out = await mkdtemp(path.join(scratch, 'out-'));
  const notZip = path.join(out, 'not.zip');
  await writeFile(notZip, 'plain text');
  await assert.rejects(extractBinary(notZip, 'tofu', path.join(out, 'tofu')), /cannot be read/);
});
