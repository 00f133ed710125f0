// Hostile configuration archives are rejected with the right code and leave
// nothing behind; ordinary ones (nested directories, internal links) extract.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, readlink, rm, stat, writeFile, mkdir, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Header, create as createTar } from 'tar';
import { OutpostError, type ErrorCode } from '../protocol/errors.ts';
import { extractConfiguration } from './archive-extraction.ts';

interface RawEntry {
  path: string;
  type?: string;
  body?: string | Buffer;
  linkpath?: string;
  mode?: number;
}

/** Writes tar headers by hand: node-tar's packer refuses (or rewrites) most of these names. */
function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '');
    const header = new Header({
      path: entry.path,
      type: (entry.type ?? 'File') as 'File',
      size: body.length,
      mode: entry.mode ?? 0o644,
      linkpath: entry.linkpath,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-archive-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** A fresh job-like layout: <case>/work is the job directory, <case>/work/config the destination. */
async function layout(name: string): Promise<{ caseDir: string; work: string; archive: string; destination: string }> {
  const caseDir = path.join(scratch, name);
  const work = path.join(caseDir, 'work');
  await mkdir(work, { recursive: true });
  return { caseDir, work, archive: path.join(caseDir, 'archive.tar.gz'), destination: path.join(work, 'config') };
}

async function expectRejected(name: string, data: Buffer, code: ErrorCode, mentions: string, maxBytes = 1024 * 1024): Promise<void> {
  const { caseDir, work, archive, destination } = await layout(name);
  await writeFile(archive, data);
  await assert.rejects(extractConfiguration(archive, destination, { maxBytes, maxEntries: 50 }), (error: unknown) => {
    assert.ok(error instanceof OutpostError, `expected an OutpostError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(mentions), `"${error.message}" should mention ${mentions}`);
    return true;
  });
  // Nothing written: the job directory is still empty, and nothing appeared next to it.
  assert.deepEqual(await readdir(work), []);
  assert.deepEqual((await readdir(caseDir)).sort(), ['archive.tar.gz', 'work']);
}

describe('extractConfiguration rejects', () => {
  it('a path with .. that leaves the root', async () => {
    await expectRejected('traversal', gzipSync(rawTar([{ path: 'ok.tf', body: 'x' }, { path: '../evil.tf', body: 'x' }])), 'archive_path_traversal', '../evil.tf');
    await expectRejected('traversal-nested', gzipSync(rawTar([{ path: 'a/../../evil.tf', body: 'x' }])), 'archive_path_traversal', 'a/../../evil.tf');
  });

  it('an absolute path', async () => {
    await expectRejected('absolute', gzipSync(rawTar([{ path: '/tmp/outpost-evil.tf', body: 'x' }])), 'archive_absolute_path', '/tmp/outpost-evil.tf');
  });

  it('a symbolic link pointing outside', async () => {
    const archive = rawTar([{ path: 'modules/', type: 'Directory' }, { path: 'modules/link', type: 'SymbolicLink', linkpath: '../../etc' }]);
    await expectRejected('symlink-escape', gzipSync(archive), 'archive_link_escape', 'modules/link');
    await expectRejected('symlink-absolute', gzipSync(rawTar([{ path: 'link', type: 'SymbolicLink', linkpath: '/etc' }])), 'archive_link_escape', '/etc');
  });

  it('a symbolic link that escapes only by going through another link', async () => {
    // d/e/s is the root itself, so d/e/l = root/.. : lexically inside, really outside.
    const archive = rawTar([
      { path: 'd/e/l', type: 'SymbolicLink', linkpath: 's/..' },
      { path: 'd/e/s', type: 'SymbolicLink', linkpath: '../..' },
    ]);
    await expectRejected('symlink-chain', gzipSync(archive), 'archive_link_escape', 'd/e/l');
  });

  it('an entry written through a symbolic link', async () => {
    const archive = rawTar([{ path: 'here', type: 'SymbolicLink', linkpath: '.' }, { path: 'here/main.tf', body: 'x' }]);
    await expectRejected('through-link', gzipSync(archive), 'archive_link_escape', 'here/main.tf');
  });

  it('a hard link pointing outside', async () => {
    const archive = rawTar([{ path: 'main.tf', body: 'x' }, { path: 'passwd', type: 'Link', linkpath: '../../etc/passwd' }]);
    await expectRejected('hardlink-escape', gzipSync(archive), 'archive_link_escape', 'passwd');
    await expectRejected('hardlink-absolute', gzipSync(rawTar([{ path: 'passwd', type: 'Link', linkpath: '/etc/passwd' }])), 'archive_link_escape', 'passwd');
  });

  it('device and fifo entries', async () => {
    await expectRejected('fifo', gzipSync(rawTar([{ path: 'pipe', type: 'FIFO' }])), 'archive_unsupported_entry', 'pipe');
    await expectRejected('chardev', gzipSync(rawTar([{ path: 'null', type: 'CharacterDevice' }])), 'archive_unsupported_entry', 'null');
    await expectRejected('blockdev', gzipSync(rawTar([{ path: 'sda', type: 'BlockDevice' }])), 'archive_unsupported_entry', 'sda');
  });

  it('an archive that expands beyond the limit', async () => {
    const big = rawTar([{ path: 'big.tf', body: Buffer.alloc(20_000, 'a') }]);
    await expectRejected('too-large', gzipSync(big), 'archive_too_large', 'big.tf', 10_000);
  });

  it('a gzip bomb, early', async () => {
    // 64 MiB of zeros compress to ~64 KiB; reading must stop at the 1 MiB limit.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const started = performance.now();
    await expectRejected('bomb', bomb, 'archive_too_large', 'more than');
    assert.ok(performance.now() - started < 5000, 'the bomb should be stopped long before it is fully decompressed');
  });

  it('an absurd number of entries', async () => {
    const many = rawTar(Array.from({ length: 60 }, (_, i) => ({ path: `f${i}.tf`, body: 'x' })));
    await expectRejected('many', gzipSync(many), 'archive_too_large', 'entries');
  });

  it('data that is not a .tar.gz', async () => {
    await expectRejected('garbage', Buffer.from('this is not an archive at all, just text'), 'archive_invalid', 'not a valid');
    await expectRejected('gzip-of-text', gzipSync(Buffer.from('plain text, gzipped, but no tar inside')), 'archive_invalid', 'not a valid');
    const valid = gzipSync(rawTar([{ path: 'main.tf', body: 'x'.repeat(5000) }]));
    await expectRejected('truncated', valid.subarray(0, valid.length - 40), 'archive_invalid', 'not a valid');
    await expectRejected('double-gzip', gzipSync(gzipSync(rawTar([{ path: 'main.tf', body: 'x' }]))), 'archive_invalid', 'compressed twice');
  });
});

describe('extractConfiguration extracts', () => {
  it('nested directories, files, and links that stay inside', async () => {
    const { archive, destination, work } = await layout('valid');
    const archiveData = rawTar([
      { path: './', type: 'Directory', mode: 0o755 },
      { path: 'main.tf', body: 'resource "terraform_data" "x" {}\n' },
      { path: 'modules/net/main.tf', body: 'variable "cidr" {}\n' },
      { path: 'modules/current', type: 'SymbolicLink', linkpath: 'net' },
      { path: 'modules/net/shared.tf', type: 'SymbolicLink', linkpath: '../../main.tf' },
      { path: 'copy.tf', type: 'Link', linkpath: 'main.tf' },
      { path: 'scripts/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
      { path: 'docs/../README.md', body: 'hello\n' },
    ]);
    await writeFile(archive, gzipSync(archiveData));
    const summary = await extractConfiguration(archive, destination, { maxBytes: 1024 * 1024 });
    assert.deepEqual(summary, { files: 4, directories: 0, links: 3, bytes: 68 });
    assert.deepEqual(await readdir(work), ['config']);
    assert.equal(await readFile(path.join(destination, 'modules/current/main.tf'), 'utf8'), 'variable "cidr" {}\n');
    assert.equal(await readlink(path.join(destination, 'modules/current')), 'net');
    assert.equal(await readFile(path.join(destination, 'modules/net/shared.tf'), 'utf8'), 'resource "terraform_data" "x" {}\n');
    assert.equal((await stat(path.join(destination, 'copy.tf'))).nlink, 2);
    assert.equal((await stat(path.join(destination, 'scripts/run.sh'))).mode & 0o111, 0o111);
    assert.equal(await readFile(path.join(destination, 'README.md'), 'utf8'), 'hello\n');
  });

  it('an archive made by node-tar from a real directory', async () => {
    const { caseDir, archive, destination } = await layout('from-tar');
    const source = path.join(caseDir, 'source');
    await mkdir(path.join(source, 'envs/prod'), { recursive: true });
    await writeFile(path.join(source, 'envs/prod/main.tf'), 'output "x" { value = 1 }\n');
    await symlink('envs/prod', path.join(source, 'prod'));
    await createTar({ gzip: true, file: archive, cwd: source, portable: true }, ['.']);
    await extractConfiguration(archive, destination, { maxBytes: 1024 * 1024 });
    assert.equal(await readFile(path.join(destination, 'prod/main.tf'), 'utf8'), 'output "x" { value = 1 }\n');
  });
});
