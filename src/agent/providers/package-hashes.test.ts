// The hashes the mirror hands to the engine must be the ones the engine
// computes itself, or `tofu init` refuses the package (or writes a lock file
// other machines reject). The reference is the real engine: `tofu providers
// lock` against the fixture registry, and the hashes in the lock file it writes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { startProviderRegistry, type ProviderRegistry } from '../../../test/support/provider-registry.ts';
import { tofuBinary } from '../../../test/support/toolchain.ts';
import { fileSha256, matchesAnyHash, packageHashes } from './package-hashes.ts';
import { hostPlatform } from './provider-address.ts';

// A portless name, as the engine spells registry hosts in lock files.
const hostname = 'registry.outpost.test';
const platform = hostPlatform();

let scratch = '';
let registry: ProviderRegistry;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-package-hashes-test-'));
  registry = await startProviderRegistry({ protocol: 'registry', providers: [{ namespace: 'outpost-test', type: 'simple', versions: ['1.0.0'] }] });
});
after(async () => {
  await registry?.close();
  await rm(scratch, { recursive: true, force: true });
});

/** The fixture's zip of 1.0.0, fetched as any client would. */
async function downloadPackage(): Promise<string> {
  const zipName = `terraform-provider-simple_1.0.0_${platform}.zip`;
  const response = await fetchWithCa(`${registry.url}/files/outpost-test/simple/1.0.0/${zipName}`);
  const file = path.join(scratch, zipName);
  await writeFile(file, response);
  return file;
}

async function fetchWithCa(url: string): Promise<Buffer> {
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, registry.caPem] } });
  try {
    const response = await request(url, { dispatcher });
    assert.equal(response.statusCode, 200, url);
    return Buffer.from(await response.body.arrayBuffer());
  } finally {
    await dispatcher.close();
  }
}

/** The `h1:`/`zh:` hashes `tofu providers lock` records for the fixture's provider. */
async function hashesLockedByTofu(): Promise<string[]> {
  const dir = await mkdtemp(path.join(scratch, 'workspace-'));
  await writeFile(
    path.join(dir, 'main.tf'),
    `terraform {\n  required_providers {\n    simple = { source = "${hostname}/outpost-test/simple", version = "1.0.0" }\n  }\n}\n`,
  );
  const cliConfig = path.join(dir, 'cli.tfrc');
  await writeFile(cliConfig, `host "${hostname}" {\n  services = {\n    "providers.v1" = "${registry.url}/v1/providers/"\n  }\n}\n`);
  const env = { HOME: dir, SSL_CERT_FILE: registry.caFile, TF_CLI_CONFIG_FILE: cliConfig, CHECKPOINT_DISABLE: '1' };
  const output = await new Promise<string>((resolve, reject) => {
    execFile(tofuBinary(), ['providers', 'lock', `-platform=${platform}`, '-no-color'], { cwd: dir, env }, (error, stdout, stderr) => {
      if (error) reject(new Error(`tofu providers lock failed:\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
  assert.match(output, /signed/, output);
  const lock = await readFile(path.join(dir, '.terraform.lock.hcl'), 'utf8');
  const block = new RegExp(`provider "${hostname.replace(/\./g, '\\.')}/outpost-test/simple" \\{[^}]*hashes = \\[([^\\]]*)\\]`).exec(lock);
  assert.ok(block, lock);
  return [...block[1]!.matchAll(/"((?:h1|zh):[^"]+)"/g)].map((match) => match[1]!);
}

describe('packageHashes', () => {
  it('computes the same h1: and zh: hashes as tofu records in its lock file', async () => {
    const [file, locked] = await Promise.all([downloadPackage(), hashesLockedByTofu()]);
    const hashes = await packageHashes(file);

    const lockedH1 = locked.filter((hash) => hash.startsWith('h1:'));
    const lockedZh = locked.filter((hash) => hash.startsWith('zh:'));
    assert.deepEqual(lockedH1, [hashes.h1], `tofu locked ${locked.join(', ')}`);
    assert.deepEqual(lockedZh, [hashes.zh], `tofu locked ${locked.join(', ')}`);
    assert.equal(hashes.zh, `zh:${registry.packageSha256('outpost-test', 'simple', '1.0.0')}`);
    // A sha256 the caller already has is used for zh: as is (the download hashed the file while writing it).
    assert.deepEqual(await packageHashes(file, await fileSha256(file)), hashes);
    assert.ok(matchesAnyHash(hashes, ['zh:0000', hashes.h1]));
    assert.ok(matchesAnyHash(hashes, [hashes.zh]));
    assert.equal(matchesAnyHash(hashes, ['h1:x', `zh:${'0'.repeat(64)}`, 'md5:whatever']), false);
    assert.equal(matchesAnyHash(hashes, []), false);
  });

  it('rejects a file that is not a zip archive', async () => {
    const file = path.join(scratch, 'not-a-zip.zip');
    await writeFile(file, 'this is not a zip archive, although its name says so\n');
    await assert.rejects(packageHashes(file), /end of central directory|zip/i);
  });

  it('rejects a zip archive cut short', async () => {
    const whole = await readFile(await downloadPackage());
    const file = path.join(scratch, 'cut-short.zip');
    await writeFile(file, whole.subarray(0, Math.floor(whole.length / 2)));
    await assert.rejects(packageHashes(file));
  });
});
