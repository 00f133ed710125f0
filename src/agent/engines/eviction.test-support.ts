// Test fixture for the binary cache eviction tests (imported only by
// *.test.ts): fake cache entries of a chosen size and last use, a logger
// whose lines the test can read, and an EngineCache that cannot download
// (its mirror is a closed port), so a missing entry is never fetched.
import { mkdir, readdir, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { Engine } from '../../protocol/statuses.ts';
import { EngineCache, type EngineCacheOptions } from './engine-cache.ts';
import { closedPort } from './release-mirror.test-support.ts';
import { engineBinaryName } from './release-files.ts';

export const MiB = 1024 * 1024;
export const DAY = 24 * 60 * 60_000;

export interface FakeEntry {
  engine?: Engine;
  version: string;
  mb: number;
  /** Last use, in days before now. */
  daysAgo: number;
}

/** A published-looking version directory: a sparse binary of `mb` MiB, mtime `daysAgo`. */
export async function fakeEntry(dir: string, entry: FakeEntry): Promise<string> {
  const engine = entry.engine ?? 'opentofu';
  const versionDir = path.join(dir, engine, entry.version);
  await mkdir(versionDir, { recursive: true });
  const binary = path.join(versionDir, engineBinaryName(engine));
  await writeFile(binary, '');
  await truncate(binary, entry.mb * MiB);
  await setLastUse(dir, engine, entry.version, entry.daysAgo);
  return binary;
}

/** Sets the version directory's mtime, which the cache reads as last use. */
export async function setLastUse(dir: string, engine: Engine, version: string, daysAgo: number): Promise<void> {
  const when = new Date(Date.now() - daysAgo * DAY);
  await utimes(path.join(dir, engine, version), when, when);
}

/** `engine/version` of every version directory, sorted. */
export async function cachedVersions(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const engine of ['opentofu', 'terraform']) {
    const versions = await readdir(path.join(dir, engine)).catch(() => []);
    found.push(...versions.map((version) => `${engine}/${version}`));
  }
  return found.sort();
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

/** A cache over `dir` with the given policy, whose downloads fail at once. */
export async function offlineCache(dir: string, overrides: Partial<EngineCacheOptions> = {}): Promise<EngineCache> {
  return new EngineCache({
    dir,
    mirror: `http://127.0.0.1:${await closedPort()}`,
    downloadTimeoutMs: 10_000,
    logger: pino({ level: 'silent' }),
    platform: { os: 'linux', arch: 'amd64' },
    searchPath: '',
    ...overrides,
  });
}
