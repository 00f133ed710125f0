// The agent's provider mirror as jobs see it: the network mirror protocol
// over HTTPS with the mirror's own CA, per-job keys, hostile paths, upstream
// trouble, and finally the real engine installing a provider through it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCertificates } from 'node:tls';
import { pino } from 'pino';
import { Agent } from 'undici';
import { startProviderRegistry, type ProviderRegistry } from '../../../test/support/provider-registry.ts';
import { tofuBinary } from '../../../test/support/toolchain.ts';
import { fileSha256 } from './package-hashes.ts';
import { hostPlatform } from './provider-address.ts';
import { startProviderMirror } from './provider-cache-setup.ts';
import type { MirrorAccess, ProviderMirror } from './provider-mirror.ts';

const hostname = 'registry.outpost.test';
const platform = hostPlatform();
const provider = `${hostname}/outpost-test/simple`;
const zipName = `terraform-provider-simple_1.0.0_${platform}.zip`;

let scratch = '';
let cacheDir = '';
let registry: ProviderRegistry;
let mirror: ProviderMirror;
let client: Agent;
let access: MirrorAccess;
const notes: string[] = [];

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-provider-mirror-test-'));
  cacheDir = path.join(scratch, 'cache');
  registry = await startProviderRegistry({ protocol: 'registry', providers: [{ namespace: 'outpost-test', type: 'simple', versions: ['1.0.0', '1.1.0'] }] });
  mirror = await startProviderMirror(
    {
      cacheDir,
      sizeLimitMb: 0,
      versionsTtlMs: 60_000,
      networkMirrors: [],
      registryServices: { [hostname]: `${registry.url}/v1/providers/` },
      registryCredentials: {},
      caCert: registry.caPem,
      downloadTimeoutMs: 30_000,
      port: 0,
    },
    pino({ level: 'silent' }),
  );
  access = mirror.open('job-1', (line) => notes.push(line));
  // Short timeouts: a handler that never answers fails the test in seconds, not minutes.
  client = new Agent({ connect: { ca: [...rootCertificates, access.caPem] }, headersTimeout: 10_000, bodyTimeout: 10_000 });
});
after(async () => {
  access?.close();
  await client?.close();
  await mirror?.close();
  await registry?.close();
  await rm(scratch, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: Buffer;
  json(): { errors?: string[] } & Record<string, unknown>;
}

/** GET of a raw path (sent as is: no URL normalisation of "..") on the mirror's origin. */
async function get(rawPath: string): Promise<Answer> {
  const response = await client.request({ origin: mirror.origin, path: rawPath, method: 'GET' });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, body, json: () => JSON.parse(body.toString()) as ReturnType<Answer['json']> };
}

const keyPath = (url: string): string => new URL(url).pathname;

describe('ProviderMirror', () => {
  it('answers index.json and <version>.json per the network mirror protocol, with an archive that downloads intact', async () => {
    const base = `${keyPath(access.url)}${provider}`;
    const index = await get(`${base}/index.json`);
    assert.equal(index.status, 200, index.body.toString());
    assert.deepEqual(index.json(), { versions: { '1.0.0': {}, '1.1.0': {} } });

    const document = await get(`${base}/1.0.0.json`);
    assert.equal(document.status, 200, document.body.toString());
    const archives = document.json().archives as Record<string, { url: string; hashes: string[] }>;
    assert.deepEqual(Object.keys(archives), [platform]);
    const archive = archives[platform]!;
    assert.equal(archive.url, `1.0.0/${zipName}`, 'relative to the document');
    // zh: comes free with the download; h1: (unpacking the zip) only when an
    // upstream vouched with h1: alone, which a signed registry never does.
    assert.deepEqual(archive.hashes, [`zh:${registry.packageSha256('outpost-test', 'simple', '1.0.0')}`]);

    const zipUrl = new URL(archive.url, `${mirror.origin}${base}/1.0.0.json`);
    const zip = await get(zipUrl.pathname);
    assert.equal(zip.status, 200);
    const downloaded = path.join(scratch, zipName);
    await writeFile(downloaded, zip.body);
    assert.equal(await fileSha256(downloaded), registry.packageSha256('outpost-test', 'simple', '1.0.0'));
    assert.deepEqual(access.served, { fromCache: 1, downloaded: 1 }, 'downloaded for the document, served from the cache for the zip');
    assert.deepEqual(notes, []);
  });

  it('refuses an unknown key and the key of a job that ended', async () => {
    const unknown = await get(`/${'x'.repeat(32)}/${provider}/index.json`);
    assert.equal(unknown.status, 403);
    assert.match(unknown.json().errors?.[0] ?? '', /not running on this agent/);

    const ended = mirror.open('job-2', () => undefined);
    assert.equal((await get(`${keyPath(ended.url)}${provider}/index.json`)).status, 200);
    ended.close();
    assert.equal((await get(`${keyPath(ended.url)}${provider}/index.json`)).status, 403);
    assert.equal((await get(`${keyPath(ended.url)}${provider}/1.0.0/${zipName}`)).status, 403);
  });

  it('answers hostile paths with 404, without reading any file outside the cache or asking upstream', async () => {
    // Bait next to the cache: a traversal that reached it would send it back.
    await writeFile(path.join(scratch, 'secret.json'), '{"secret":"SECRET"}');
    await writeFile(path.join(scratch, zipName), 'SECRET');
    const cacheFiles = await readdir(cacheDir, { recursive: true });
    registry.clearRequests();
    const key = keyPath(access.url);
    const hostile = [
      `${key}../secret.json`,
      `${key}../../../../../etc/passwd`,
      `${key}%2e%2e/%2e%2e/simple/index.json`,
      `${key}${hostname}/%2e%2e/%2e%2e/secret.json`,
      `${key}${hostname}/..%2f..%2f..%2f/simple/index.json`,
      `${key}${hostname}/outpost-test%2fsimple/x/index.json`,
      `${key}${hostname}/outpost-test/simple%2f..%2f..%2f..%2f..%2fsecret/index.json`,
      `${key}..%2f..%2f..%2f/outpost-test/simple/index.json`,
      `${key}${provider}/..%2f..%2f..%2f..%2f..%2f..%2fsecret.json`,
      `${key}${provider}/..%2F..%2Fx.json`,
      `${key}${provider}/%2e%2e.json`,
      `${key}${provider}/..%2f..%2fx/${zipName}`,
      `${key}${provider}/../../x/${zipName}`,
      `${key}${provider}/1.0.0/..%2f..%2f..%2f..%2f..%2f..%2f..%2f${zipName}`,
      `${key}${provider}/1.0.0/${platform}.json`,
      `${key}${provider}/1.0.0/terraform-provider-other_1.0.0_${platform}.zip`,
      `${key}${provider}/1.0.0/terraform-provider-simple_1.1.0_${platform}.zip`,
      `${key}${provider}/1.0.0/${zipName}%00`,
      `${key}${provider}/1.0.0/${zipName}/x`,
    ];
    for (const rawPath of hostile) {
      const answer = await get(rawPath);
      assert.equal(answer.status, 404, `${rawPath}: ${answer.status} ${answer.body.toString()}`);
      assert.ok(!answer.body.includes('SECRET'), rawPath);
      assert.ok(Array.isArray(answer.json().errors), rawPath);
    }
    assert.deepEqual(registry.requests, [], 'no hostile path reached upstream');
    assert.deepEqual(await readdir(cacheDir, { recursive: true }), cacheFiles);
  });

  it('answers an upstream failure with 502 and its reason, in the body and in the job\'s notes', async () => {
    registry.fault({ path: /\/1\.1\.0\/download\//, status: 500 });
    const answer = await get(`${keyPath(access.url)}${provider}/1.1.0.json`);
    assert.equal(answer.status, 502);
    const [reason] = answer.json().errors ?? [];
    assert.match(reason ?? '', /could not fetch registry\.outpost\.test\/outpost-test\/simple 1\.1\.0 .*HTTP 500/);
    assert.deepEqual(notes, [`Outpost provider cache: ${reason}`]);
    notes.length = 0;
  });

  it('serves tofu init, which trusts the mirror\'s CA and verifies the package', async () => {
    const dir = await mkdtemp(path.join(scratch, 'workspace-'));
    await writeFile(
      path.join(dir, 'main.tf'),
      `terraform {\n  required_providers {\n    simple = { source = "${provider}", version = "1.0.0" }\n  }\n}\n`,
    );
    await writeFile(path.join(dir, 'cli.tfrc'), `provider_installation {\n  network_mirror {\n    url = "${access.url}"\n  }\n}\n`);
    // Only the mirror's CA: if Go accepted the certificate, it is through that alone.
    await writeFile(path.join(dir, 'mirror-ca.pem'), access.caPem);
    const env = { HOME: dir, SSL_CERT_FILE: path.join(dir, 'mirror-ca.pem'), TF_CLI_CONFIG_FILE: path.join(dir, 'cli.tfrc'), CHECKPOINT_DISABLE: '1' };
    const output = await new Promise<string>((resolve, reject) => {
      execFile(tofuBinary(), ['init', '-input=false', '-no-color'], { cwd: dir, env }, (error, stdout, stderr) => {
        if (error) reject(new Error(`tofu init failed:\n${stdout}${stderr}`));
        else resolve(`${stdout}${stderr}`);
      });
    });
    assert.match(output, /Installed registry\.outpost\.test\/outpost-test\/simple v1\.0\.0 \(verified checksum\)/);
    const lock = await readFile(path.join(dir, '.terraform.lock.hcl'), 'utf8');
    assert.ok(lock.includes(`"zh:${registry.packageSha256('outpost-test', 'simple', '1.0.0')}"`), lock);
    assert.match(lock, /"h1:[A-Za-z0-9+/]{43}="/);
    assert.deepEqual(notes, []);
  });
});
