// Proves the provider registry fixture against the real engine: if `tofu init`
// installs (and `tofu apply` runs) the provider from it in both protocols, and
// the engine reacts to its faults as it would to a real origin's, tests built
// on it are testing Outpost rather than the fixture.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startProviderRegistry, type ProviderPackageSpec, type ProviderRegistry } from './provider-registry.ts';
import { tofuBinary } from './toolchain.ts';

const providers: ProviderPackageSpec[] = [{ namespace: 'outpost-test', type: 'simple', versions: ['1.0.0', '1.1.0'] }];
const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const zipName = `terraform-provider-simple_1.0.0_linux_${arch}.zip`;
const sumsName = 'terraform-provider-simple_1.0.0_SHA256SUMS';

let scratch = '';
let registry: ProviderRegistry;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-provider-registry-test-'));
  registry = await startProviderRegistry({ protocol: 'registry', providers });
});
after(async () => {
  await registry?.close();
  await rm(scratch, { recursive: true, force: true });
});

interface EngineRun {
  code: number;
  output: string;
}

interface Workspace {
  dir: string;
  run(...args: string[]): Promise<EngineRun>;
}

/** A configuration using provider `source`, and an engine that trusts `caFile` and reads `cliConfig` as its CLI configuration. */
async function workspace(source: string, caFile: string, cliConfig = ''): Promise<Workspace> {
  const dir = await mkdtemp(path.join(scratch, 'workspace-'));
  const home = await mkdtemp(path.join(scratch, 'home-'));
  await writeFile(
    path.join(dir, 'main.tf'),
    `terraform {\n  required_providers {\n    simple = { source = "${source}", version = "1.0.0" }\n  }\n}\n\n` +
      `resource "simple_resource" "x" {\n  value = "hi"\n}\n`,
  );
  const cliConfigFile = path.join(home, 'cli.tfrc');
  await writeFile(cliConfigFile, cliConfig);
  const env = { HOME: home, SSL_CERT_FILE: caFile, TF_CLI_CONFIG_FILE: cliConfigFile, CHECKPOINT_DISABLE: '1' };
  const run = (...args: string[]): Promise<EngineRun> =>
    new Promise((resolve) => {
      execFile(tofuBinary(), [...args, '-input=false', '-no-color'], { cwd: dir, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` });
      });
    });
  return { dir, run };
}

function succeeded(run: EngineRun, what: string): void {
  assert.equal(run.code, 0, `${what} failed:\n${run.output}`);
}

function pathsOf(target: ProviderRegistry): string[] {
  return target.requests.map((request) => request.path);
}

test('registry protocol: tofu installs the signed provider, locks its hash and runs it', async () => {
  registry.clearRequests();
  const source = `${registry.host}/outpost-test/simple`;
  const engine = await workspace(source, registry.caFile);

  const init = await engine.run('init');
  succeeded(init, 'tofu init');
  assert.match(init.output, /Installed localhost:\d+\/outpost-test\/simple v1\.0\.0 \(signed, key ID [0-9A-F]{16}\)/);
  assert.match(init.output, /Providers are signed by their developers/);
  const lock = await readFile(path.join(engine.dir, '.terraform.lock.hcl'), 'utf8');
  assert.match(lock, new RegExp(`provider "${source}" \\{\\s+version\\s+= "1\\.0\\.0"`));
  assert.ok(lock.includes(`"zh:${registry.packageSha256('outpost-test', 'simple', '1.0.0')}"`), lock);

  succeeded(await engine.run('apply', '-auto-approve'), 'tofu apply');
  const files = '/files/outpost-test/simple/1.0.0';
  assert.deepEqual(pathsOf(registry), [
    '/.well-known/terraform.json',
    '/v1/providers/outpost-test/simple/versions',
    `/v1/providers/outpost-test/simple/1.0.0/download/linux/${arch}`,
    `${files}/${sumsName}`,
    `${files}/${sumsName}.sig`,
    `${files}/${zipName}`,
  ]);
  assert.ok(registry.requests.every((request) => request.status === 200 && request.bytes > 0));
});

test('registry protocol: tofu retries a zip answered with 500 twice, then gives up', async () => {
  registry.clearRequests();
  registry.fault({ path: /\.zip$/, status: 500, times: 3 });
  const engine = await workspace(`${registry.host}/outpost-test/simple`, registry.caFile);

  const init = await engine.run('init');
  assert.notEqual(init.code, 0, init.output);
  assert.match(init.output, /giving up after 3 attempt\(s\)/);
  const zips = registry.requests.filter((request) => request.path.endsWith('.zip'));
  assert.deepEqual(
    zips.map((request) => request.status),
    [500, 500, 500],
  );
});

test('registry protocol: tofu fails at once, without retrying, on a zip cut short', async () => {
  registry.clearRequests();
  registry.fault({ path: /\.zip$/, truncateAfterBytes: 100_000, times: 3 });
  const engine = await workspace(`${registry.host}/outpost-test/simple`, registry.caFile);

  const init = await engine.run('init');
  assert.notEqual(init.code, 0, init.output);
  assert.match(init.output, /unexpected\s+EOF/);
  const zips = registry.requests.filter((request) => request.path.endsWith('.zip'));
  assert.deepEqual(zips, [{ method: 'GET', path: `/files/outpost-test/simple/1.0.0/${zipName}`, status: 200, bytes: 100_000 }]);
});

test('registry protocol without signing: tofu refuses the provider from a registry other than its own', async () => {
  const unsigned = await startProviderRegistry({ protocol: 'registry', providers, sign: false });
  try {
    const init = await (await workspace(`${unsigned.host}/outpost-test/simple`, unsigned.caFile)).run('init');
    assert.notEqual(init.code, 0, init.output);
    assert.match(init.output, /not signed with a valid signing key/);
  } finally {
    await unsigned.close();
  }
});

// OpenTofu 1.10 cannot ask a network mirror about a provider whose hostname
// has a port (it joins `localhost:<port>/...` into a relative URL, which
// parses as scheme "localhost"), so the mirror serves a default-registry address.
test('mirror protocol: tofu installs the provider from the network mirror and runs it', async () => {
  const mirror = await startProviderRegistry({ protocol: 'mirror', providers });
  try {
    const cliConfig = `provider_installation {\n  network_mirror {\n    url = "${mirror.url}/"\n  }\n}\n`;
    const engine = await workspace('registry.opentofu.org/outpost-test/simple', mirror.caFile, cliConfig);

    const init = await engine.run('init');
    succeeded(init, 'tofu init');
    assert.match(init.output, /Installed outpost-test\/simple v1\.0\.0 \(verified checksum\)/);
    succeeded(await engine.run('apply', '-auto-approve'), 'tofu apply');
    const origin = '/registry.opentofu.org/outpost-test/simple';
    assert.deepEqual(pathsOf(mirror), [`${origin}/index.json`, `${origin}/1.0.0.json`, `${origin}/${zipName}`]);
    assert.ok(mirror.requests.every((request) => request.status === 200 && request.bytes > 0));
  } finally {
    await mirror.close();
  }
});

interface Fetched {
  status: number;
  body: Buffer;
  elapsedMs: number;
  /** The connection broke before the whole body arrived. */
  broken: boolean;
}

function fetchFrom(target: ProviderRegistry, urlPath: string): Promise<Fetched> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    https
      .get(`${target.url}${urlPath}`, { ca: target.caPem }, (response) => {
        const chunks: Buffer[] = [];
        const done = (broken: boolean): void =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks), elapsedMs: Date.now() - started, broken });
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => done(false));
        response.on('error', () => done(true));
      })
      .on('error', reject);
  });
}

test('latency, throughput limit and 404s behave as configured', async () => {
  const slow = await startProviderRegistry({ protocol: 'registry', providers, latencyMs: 150, bytesPerSecond: 100_000 });
  try {
    const missing = await fetchFrom(slow, '/v1/providers/outpost-test/other/versions');
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.body.toString()), { errors: ['Not Found'] });
    assert.ok(missing.elapsedMs >= 140, `answered after ${missing.elapsedMs} ms`);

    slow.fault({ path: /\.zip$/, truncateAfterBytes: 50_000 });
    const cut = await fetchFrom(slow, `/files/outpost-test/simple/1.0.0/${zipName}`);
    assert.equal(cut.status, 200);
    assert.ok(cut.broken);
    assert.equal(cut.body.length, 50_000);
    // 150 ms of latency plus 50 kB at 100 kB/s.
    assert.ok(cut.elapsedMs >= 600, `cut short after ${cut.elapsedMs} ms`);
    assert.deepEqual(
      slow.requests.map(({ status, bytes }) => ({ status, bytes })),
      [
        { status: 404, bytes: missing.body.length },
        { status: 200, bytes: 50_000 },
      ],
    );
  } finally {
    await slow.close();
  }
});
