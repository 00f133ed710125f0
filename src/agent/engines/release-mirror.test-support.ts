// Test fixture for the engine cache tests (imported only by *.test.ts): a
// local HTTP mirror laid out like OUTPOST_AGENT_BINARY_MIRROR, serving a real
// OpenTofu release zip built from the test toolchain's binary, that records
// every request so tests can count downloads.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import yazl from 'yazl';
import { OutpostError } from '../../protocol/errors.ts';
import { tofuBinary, tofuVersion } from '../../../test/support/toolchain.ts';
import type { EngineRef } from '../../protocol/agent-api.ts';
import { EngineCache, type EngineCacheOptions, type EngineLease } from './engine-cache.ts';

const run = promisify(execFile);

export const zipName = `tofu_${tofuVersion}_linux_amd64.zip`;
export const sumsName = `tofu_${tofuVersion}_SHA256SUMS`;
export const zipPath = `/opentofu/${tofuVersion}/${zipName}`;
export const sumsPath = `/opentofu/${tofuVersion}/${sumsName}`;
export const tofuRef = { name: 'opentofu', version: tofuVersion } as const;

export interface Route {
  status: number;
  file?: string;
  body?: string | Buffer;
  /** Never answer: only the client's timeout ends the request. */
  hang?: boolean;
  location?: string;
}

export class ReleaseMirror {
  readonly routes = new Map<string, Route>();
  readonly requests: string[] = [];
  readonly scratch: string;
  readonly releaseZip: string;
  private readonly releaseSums: string;
  private readonly server: http.Server;

  private constructor(scratch: string, releaseZip: string, releaseSums: string) {
    this.scratch = scratch;
    this.releaseZip = releaseZip;
    this.releaseSums = releaseSums;
    this.server = http.createServer((request, response) => this.answer(request, response));
    this.serveRelease();
  }

  static async start(): Promise<ReleaseMirror> {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-engines-'));
    const releaseZip = path.join(scratch, zipName);
    await zipRelease(releaseZip);
    const digest = createHash('sha256').update(await readFile(releaseZip)).digest('hex');
    const releaseSums = `${'0'.repeat(64)}  tofu_${tofuVersion}_darwin_arm64.zip\n${digest}  ${zipName}\n`;
    const mirror = new ReleaseMirror(scratch, releaseZip, releaseSums);
    await new Promise<void>((resolve) => mirror.server.listen(0, '127.0.0.1', resolve));
    return mirror;
  }

  /** Base URL to use as OUTPOST_AGENT_BINARY_MIRROR. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Back to serving the intact release, with no requests recorded. */
  serveRelease(): void {
    this.routes.clear();
    this.routes.set(zipPath, { status: 200, file: this.releaseZip });
    this.routes.set(sumsPath, { status: 200, body: this.releaseSums });
    this.requests.length = 0;
  }

  countOf(urlPath: string): number {
    return this.requests.filter((item) => item === urlPath).length;
  }

  /** Cache options pointing at this mirror, with an empty search PATH. */
  options(overrides: Partial<EngineCacheOptions> & { dir: string }): EngineCacheOptions {
    return {
      mirror: this.url,
      downloadTimeoutMs: 60_000,
      logger: pino({ level: 'silent' }),
      platform: { os: 'linux', arch: 'amd64' },
      searchPath: '',
      ...overrides,
    };
  }

  /** acquire() on a new cache for this mirror, in a fresh directory unless `overrides.dir` says otherwise. */
  async acquire(overrides: Partial<EngineCacheOptions> = {}, notes: string[] = [], ref: EngineRef = tofuRef): Promise<EngineLease> {
    const cache = new EngineCache(this.options({ dir: await this.freshDir(), ...overrides }));
    return cache.acquire(ref, (line) => notes.push(line));
  }

  freshDir(prefix = 'cache-'): Promise<string> {
    return mkdtemp(path.join(this.scratch, prefix));
  }

  /** A `tofu` script that claims to be `version`. */
  async fakeTofu(version: string): Promise<string> {
    const file = path.join(await this.freshDir('fake-'), 'tofu');
    await writeFile(file, `#!/bin/sh\necho '{"terraform_version": "${version}", "platform": "linux_amd64"}'\n`);
    await chmod(file, 0o755);
    return file;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.scratch, { recursive: true, force: true });
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse): void {
    const urlPath = request.url ?? '';
    this.requests.push(urlPath);
    const route = this.routes.get(urlPath);
    if (route?.hang === true) return;
    response.statusCode = route?.status ?? 404;
    if (route?.location !== undefined) response.setHeader('location', route.location);
    if (route?.file !== undefined) createReadStream(route.file).pipe(response);
    else response.end(route?.body ?? 'not found');
  }
}

async function zipRelease(target: string): Promise<void> {
  const zip = new yazl.ZipFile();
  // Stored, not deflated: the tests are about the cache, not compression speed.
  zip.addFile(tofuBinary(), 'tofu', { compress: false, mode: 0o100755 });
  zip.addBuffer(Buffer.from('license text\n'), 'LICENSE', { compress: false });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(target)).on('finish', resolve).on('error', reject);
  });
}

/** What `<binary> version -json` reports. */
export async function reportedVersion(binary: string): Promise<string> {
  const env = { TF_CLI_CONFIG_FILE: os.devNull, CHECKPOINT_DISABLE: '1' };
  const { stdout } = await run(binary, ['version', '-json'], { env });
  return (JSON.parse(stdout) as { terraform_version: string }).terraform_version;
}

/** A local port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** The OutpostError the promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<OutpostError> {
  const error = await promise.then(
    () => assert.fail('expected acquire() to fail'),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof OutpostError, `expected an OutpostError, got ${String(error)}`);
  return error;
}

/**
 * One mirror for a whole test file: started before its tests, closed after
 * them, and (with `resetEachTest`) serving the real release again before
 * every test, so a test that broke a route cannot affect the next.
 */
export function useReleaseMirror(receive: (mirror: ReleaseMirror) => void, options: { resetEachTest?: boolean } = {}): void {
  let mirror: ReleaseMirror | undefined;
  before(async () => {
    mirror = await ReleaseMirror.start();
    receive(mirror);
  });
  after(() => mirror?.close());
  if (options.resetEachTest) beforeEach(() => mirror?.serveRelease());
}
