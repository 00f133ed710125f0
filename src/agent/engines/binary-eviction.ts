// Eviction from the engine binary cache: versions unused for longer than the
// threshold go, then, while the cache is over its size limit, the least
// recently used go first. Last use is the version directory's mtime (touched
// on every acquire, so it survives an agent restart) or, when later, the
// in-memory registry's time. A version a running job holds is never removed,
// even if the cache then stays over the limit.
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { engines, type Engine } from '../../protocol/statuses.ts';
import { entryDir, partialDir, partialPath } from './cache-layout.ts';

export interface EvictionPolicy {
  /** Largest total size of the cached versions, in bytes; 0 means no limit. */
  sizeLimitBytes: number;
  /** Versions unused for longer than this are removed; 0 means never by age. */
  unusedThresholdMs: number;
}

export interface CachedVersion {
  engine: Engine;
  version: string;
  bytes: number;
  /** Epoch milliseconds. */
  lastUsedAt: number;
}

export type EvictionReason = 'unused' | 'size_limit';

export interface EvictionReport {
  evicted: (CachedVersion & { reason: EvictionReason })[];
  /** Versions that would have been removed but a running job holds them. */
  keptInUse: CachedVersion[];
  /** Size of the cache after eviction, in bytes. */
  totalBytes: number;
}

/**
 * How eviction coordinates with acquire() in the same process. `claim` must
 * decide synchronously: it returns undefined when the version is in use (or
 * was used after `listedAt`), otherwise it marks the version as being removed
 * and returns the function that ends that mark once the directory is moved.
 */
export interface EvictionGuard {
  claim(engine: Engine, version: string, listedAt: number): (() => void) | undefined;
  /** In-memory last use, newer than the mtime while a lease is held. */
  lastUsedAt(engine: Engine, version: string): number | undefined;
}

export interface EvictionRequest {
  dir: string;
  policy: EvictionPolicy;
  guard: EvictionGuard;
  logger: Logger;
  /** Why eviction runs now, for the log: `agent start`, `download`. */
  trigger: string;
  now?: number;
}

export function evictionEnabled(policy: EvictionPolicy): boolean {
  return policy.sizeLimitBytes > 0 || policy.unusedThresholdMs > 0;
}

export async function evictBinaries(request: EvictionRequest): Promise<EvictionReport> {
  const { dir, policy, guard, logger } = request;
  const listedAt = request.now ?? Date.now();
  const listed = await listCachedVersions(dir);
  const entries = listed
    .map((entry) => ({ ...entry, lastUsedAt: Math.max(entry.lastUsedAt, guard.lastUsedAt(entry.engine, entry.version) ?? 0) }))
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt);
  let totalBytes = entries.reduce((sum, entry) => sum + entry.bytes, 0);
  const report: EvictionReport = { evicted: [], keptInUse: [], totalBytes };

  // Oldest first, so that while over the limit the least recently used goes first.
  for (const entry of entries) {
    const reason = reasonToEvict(entry, policy, totalBytes, listedAt);
    if (reason === undefined) continue;
    let outcome: 'removed' | 'in_use' | 'gone';
    try {
      outcome = await removeVersion(dir, entry, guard, listedAt);
    } catch (error) {
      // One unremovable entry (permissions, a busy disk) must not stop the rest.
      logger.warn({ err: error, engine: entry.engine, version: entry.version, reason }, 'binary cache: could not evict a version');
      continue;
    }
    if (outcome === 'in_use') {
      report.keptInUse.push(entry);
      continue;
    }
    totalBytes -= entry.bytes;
    if (outcome === 'removed') {
      report.evicted.push({ ...entry, reason });
      logger.info(
        { engine: entry.engine, version: entry.version, reason, bytes: entry.bytes, lastUsedAt: new Date(entry.lastUsedAt).toISOString(), trigger: request.trigger },
        reason === 'unused' ? 'binary cache: evicted a version unused past the threshold' : 'binary cache: evicted the least recently used version to stay under the size limit',
      );
    }
  }
  report.totalBytes = totalBytes;
  if (policy.sizeLimitBytes > 0 && totalBytes > policy.sizeLimitBytes) {
    logger.warn(
      {
        totalBytes,
        sizeLimitBytes: policy.sizeLimitBytes,
        inUse: report.keptInUse.map((entry) => `${entry.engine}/${entry.version}`),
        trigger: request.trigger,
      },
      'binary cache stays over its size limit: the versions left are in use by running jobs',
    );
  }
  return report;
}

function reasonToEvict(entry: CachedVersion, policy: EvictionPolicy, totalBytes: number, now: number): EvictionReason | undefined {
  if (policy.unusedThresholdMs > 0 && now - entry.lastUsedAt > policy.unusedThresholdMs) return 'unused';
  if (policy.sizeLimitBytes > 0 && totalBytes > policy.sizeLimitBytes) return 'size_limit';
  return undefined;
}

/**
 * Moves the version directory into .partial with one rename() and deletes it
 * there. acquire() therefore sees the whole entry or none (and then downloads
 * again), never a half-deleted one. Should the delete be interrupted, the
 * stale-partials sweep removes the rest: the directory keeps its old mtime.
 */
async function removeVersion(dir: string, entry: CachedVersion, guard: EvictionGuard, listedAt: number): Promise<'removed' | 'in_use' | 'gone'> {
  const done = guard.claim(entry.engine, entry.version, listedAt);
  if (done === undefined) return 'in_use';
  const trash = partialPath(dir, entry.engine, entry.version, '.evicted');
  try {
    await mkdir(partialDir(dir), { recursive: true });
    await rename(entryDir(dir, entry.engine, entry.version), trash);
  } catch (error) {
    // Removed meanwhile by another agent process sharing the directory.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  } finally {
    done();
  }
  await rm(trash, { recursive: true, force: true });
  return 'removed';
}

/** The published versions in the cache with their size and directory mtime. */
export async function listCachedVersions(dir: string): Promise<CachedVersion[]> {
  const found: CachedVersion[] = [];
  for (const engine of engines) {
    let versions: string[];
    try {
      versions = await readdir(path.join(dir, engine));
    } catch {
      continue;
    }
    for (const version of versions) {
      try {
        const info = await lstat(entryDir(dir, engine, version));
        if (!info.isDirectory()) continue;
        found.push({ engine, version, bytes: await treeBytes(entryDir(dir, engine, version)), lastUsedAt: info.mtimeMs });
      } catch {
        // Removed while we looked (another process evicted it): nothing to count.
      }
    }
  }
  return found;
}

// Apparent sizes (not allocated blocks): what the files would take once
// copied, and what a test's sparse file claims to be.
async function treeBytes(directory: string): Promise<number> {
  let total = 0;
  for (const item of await readdir(directory, { withFileTypes: true })) {
    const itemPath = path.join(directory, item.name);
    if (item.isDirectory()) total += await treeBytes(itemPath);
    else total += (await lstat(itemPath)).size;
  }
  return total;
}
