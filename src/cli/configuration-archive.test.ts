import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Parser, type ReadEntry } from 'tar';
import { isExcludedFromConfiguration, packConfiguration } from './configuration-archive.ts';
import { UsageError } from './exit-codes.ts';

interface ListedEntry {
  readonly type: string;
  readonly linkpath?: string;
  readonly content?: string;
}

/** The archive's entries by path (directories end in `/`). */
async function listArchive(archive: Buffer): Promise<Map<string, ListedEntry>> {
  const entries = new Map<string, ListedEntry>();
  const pending: Promise<void>[] = [];
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const chunks: Buffer[] = [];
      entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      pending.push(
        new Promise((resolve) =>
          entry.on('end', () => {
            const listed: ListedEntry = { type: entry.type, linkpath: entry.linkpath || undefined };
            entries.set(entry.path, entry.type === 'File' ? { ...listed, content: Buffer.concat(chunks).toString('utf8') } : listed);
            resolve();
          }),
        ),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.end(archive);
  });
  await Promise.all(pending);
  return entries;
}

let scratch: string;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-configuration-archive-'));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [relative, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, relative)), { recursive: true });
    await writeFile(path.join(root, relative), content);
  }
}

describe('packConfiguration', () => {
  it('packs the configuration, keeps hidden files and symlinks, leaves out local and secret data', async () => {
    const root = await mkdtemp(path.join(scratch, 'config-'));
    await writeTree(root, {
      'main.tf': 'resource "null_resource" "x" {}\n',
      '.terraform.lock.hcl': '# provider pins\n',
      '.tflint.hcl': 'config {}\n',
      'modules/net/main.tf': 'variable "cidr" {}\n',
      'modules/net/.terraform/modules/modules.json': '{}',
      '.terraform/providers/registry/null': 'binary',
      '.git/HEAD': 'ref: refs/heads/main\n',
      '.outpost/agent/cache': 'x',
      'terraform.tfstate': '{"secret": true}',
      'terraform.tfstate.backup': '{"secret": true}',
      'terraform.tfstate.d/dev/terraform.tfstate': '{}',
      'envs/prod/errored.tfstate': '{}',
    });
    await symlink('main.tf', path.join(root, 'link.tf'));
    await symlink('../modules', path.join(root, 'envs/modules'));

    const { archive } = await packConfiguration(root);
    const entries = await listArchive(archive);

    assert.deepEqual([...entries.keys()].sort(), [
      '.terraform.lock.hcl',
      '.tflint.hcl',
      'envs/',
      'envs/modules',
      'envs/prod/',
      'link.tf',
      'main.tf',
      'modules/',
      'modules/net/',
      'modules/net/main.tf',
    ]);
    assert.equal(entries.get('main.tf')?.content, 'resource "null_resource" "x" {}\n');
    assert.equal(entries.get('.terraform.lock.hcl')?.content, '# provider pins\n');
    assert.deepEqual(entries.get('link.tf'), { type: 'SymbolicLink', linkpath: 'main.tf' });
    assert.deepEqual(entries.get('envs/modules'), { type: 'SymbolicLink', linkpath: '../modules' });
  });

  it('produces a gzip stream', async () => {
    const root = await mkdtemp(path.join(scratch, 'config-'));
    await writeTree(root, { 'main.tf': '' });
    const { archive } = await packConfiguration(root);
    assert.deepEqual([...archive.subarray(0, 2)], [0x1f, 0x8b]);
  });

  it('refuses a missing directory, a file, and a directory with nothing to upload', async () => {
    const root = await mkdtemp(path.join(scratch, 'config-'));
    await writeTree(root, { 'file.tf': '', 'empty/.terraform/x': '' });
    await assert.rejects(packConfiguration(path.join(root, 'missing')), (error) => error instanceof UsageError && /does not exist/.test(error.message));
    await assert.rejects(packConfiguration(path.join(root, 'file.tf')), (error) => error instanceof UsageError && /not a directory/.test(error.message));
    await assert.rejects(packConfiguration(path.join(root, 'empty')), (error) => error instanceof UsageError && /no files to upload/.test(error.message));
  });
});

describe('isExcludedFromConfiguration', () => {
  const cases: [string, boolean][] = [
    ['.terraform', true],
    ['.terraform/providers/x', true],
    ['modules/a/.terraform/modules.json', true],
    ['.terraform.lock.hcl', false],
    ['.git', true],
    ['sub/.git/config', true],
    ['.gitignore', false],
    ['.outpost/server/db.sqlite', true],
    ['terraform.tfstate', true],
    ['terraform.tfstate.backup', true],
    ['terraform.tfstate.d/dev/terraform.tfstate', true],
    ['main.tf', false],
    ['.hidden/main.tf', false],
    ['tfstate.tf', false],
  ];
  for (const [relative, excluded] of cases) {
    it(`${excluded ? 'excludes' : 'keeps'} ${relative}`, () => {
      assert.equal(isExcludedFromConfiguration(relative), excluded);
    });
  }
});
