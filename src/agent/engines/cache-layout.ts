// The binary cache on disk:
//   <dir>/<engine>/<version>/<tofu|terraform>   a published, verified release
//   <dir>/.partial/                             downloads and extractions in progress
// A version directory only ever appears by rename() of a complete staging
// directory, so its existence means its content is whole: a crash leaves
// debris in .partial (removed later by age), never a half-written entry.
// Everything under <dir> is one filesystem, which rename() needs.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Engine } from '../../protocol/statuses.ts';
import { engineBinaryName } from './release-files.ts';

export function entryDir(dir: string, engine: Engine, version: string): string {
  return path.join(dir, engine, version);
}

export function partialDir(dir: string): string {
  return path.join(dir, '.partial');
}

/** A fresh, unused path inside .partial, named so that debris says what it was. */
export function partialPath(dir: string, engine: Engine, version: string, suffix = ''): string {
  return path.join(partialDir(dir), `${engine}-${version}-${process.pid}-${randomUUID().slice(0, 8)}${suffix}`);
}

/** The cached binary's path, or undefined when the version is not installed. */
export async function findInstalled(dir: string, engine: Engine, version: string): Promise<string | undefined> {
  const binary = path.join(entryDir(dir, engine, version), engineBinaryName(engine));
  try {
    return (await stat(binary)).isFile() ? binary : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Moves a complete staging directory to its version directory. Returns the
 * published binary: ours, or the one another agent process published first
 * (then ours is discarded; both were verified against the same checksum).
 */
export async function publishEntry(dir: string, engine: Engine, version: string, staging: string): Promise<string> {
  const target = entryDir(dir, engine, version);
  await mkdir(path.dirname(target), { recursive: true });
  for (let attempt = 0; ; attempt += 1) {
    try {
      await rename(staging, target);
      return path.join(target, engineBinaryName(engine));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw error;
      const theirs = await findInstalled(dir, engine, version);
      if (theirs !== undefined) {
        await rm(staging, { recursive: true, force: true });
        return theirs;
      }
      // A version directory without its binary was damaged by hand: move it
      // aside (rename is atomic, so a concurrent reader never sees a mix) and retry.
      if (attempt > 0) throw error;
      const aside = partialPath(dir, engine, version, '.damaged');
      await rename(target, aside).catch(() => undefined);
      await rm(aside, { recursive: true, force: true });
    }
  }
}

/** Marks the entry as just used; eviction will read the version directory's mtime. */
export async function touchEntry(dir: string, engine: Engine, version: string): Promise<void> {
  const now = new Date();
  await utimes(entryDir(dir, engine, version), now, now).catch(() => undefined);
}

/**
 * Removes leftovers of downloads that crashed. Only items older than `olderThanMs`
 * go: another agent process sharing the directory may be downloading right now.
 */
export async function removeStalePartials(dir: string, olderThanMs: number): Promise<void> {
  const root = partialDir(dir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  const cutoff = Date.now() - olderThanMs;
  for (const name of names) {
    const item = path.join(root, name);
    try {
      if ((await stat(item)).mtimeMs < cutoff) await rm(item, { recursive: true, force: true });
    } catch {
      // Gone already, or removed by another process: nothing to do.
    }
  }
}
