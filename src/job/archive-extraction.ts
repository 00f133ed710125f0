// Safe extraction of a configuration archive, in two passes over the file:
// the first checks every entry against the rules of archive-tree.ts without
// writing anything; the second writes into a staging directory next to the
// destination, which is renamed into place only when everything succeeded and
// deleted otherwise. The writer does not trust the first pass blindly: it
// never follows a symbolic link while creating files, and it checks once
// more, on the real files, that every link resolves inside the root.
import { createWriteStream } from 'node:fs';
import { link, lstat, mkdir, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ReadEntry } from 'tar';
import { OutpostError } from '../protocol/errors.ts';
import { readTarGz } from './archive-reading.ts';
import { ArchiveTree, describeEntry, type ArchiveLimits, type PlannedEntry } from './archive-tree.ts';

export interface ExtractionSummary {
  readonly files: number;
  readonly directories: number;
  readonly links: number;
  /** Bytes of file content written. */
  readonly bytes: number;
}

/** An absurd entry count for a configuration; stops archives made of millions of empty files. */
export const defaultMaxEntries = 100_000;

/** Extracts `archiveFile` (.tar.gz) into `destination`, which must not exist yet. */
export async function extractConfiguration(
  archiveFile: string,
  destination: string,
  limits: Partial<ArchiveLimits> & Pick<ArchiveLimits, 'maxBytes'>,
): Promise<ExtractionSummary> {
  const fullLimits: ArchiveLimits = { maxEntries: defaultMaxEntries, ...limits };
  const plan = await inspectArchive(archiveFile, fullLimits);
  const staging = `${destination}.partial`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o755 });
  try {
    const summary = await writeArchive(archiveFile, fullLimits.maxBytes, plan, staging);
    await checkLinksOnDisk(staging, plan);
    await rename(staging, destination);
    return summary;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** First pass: the admitted entries in archive order (undefined for the root directory entry). */
async function inspectArchive(archiveFile: string, limits: ArchiveLimits): Promise<(PlannedEntry | undefined)[]> {
  const tree = new ArchiveTree(limits);
  const plan: (PlannedEntry | undefined)[] = [];
  await readTarGz(archiveFile, limits.maxBytes, async (entry) => {
    plan.push(tree.admit(entry));
    entry.resume();
  });
  tree.checkLinks();
  return plan;
}

async function writeArchive(
  archiveFile: string,
  maxBytes: number,
  plan: readonly (PlannedEntry | undefined)[],
  root: string,
): Promise<ExtractionSummary> {
  const counts = { files: 0, directories: 0, links: 0, bytes: 0 };
  let index = 0;
  await readTarGz(archiveFile, maxBytes, async (entry, aborted) => {
    const planned = plan[index];
    index += 1;
    if (planned === undefined) {
      if (entry.type !== 'Directory') throw changedWhileExtracting(entry.path);
      entry.resume();
      return;
    }
    if (planned.rawPath !== entry.path) throw changedWhileExtracting(entry.path);
    await writeEntry(root, planned, entry, aborted);
    if (planned.kind === 'file') {
      counts.files += 1;
      counts.bytes += planned.size;
    } else if (planned.kind === 'directory') {
      counts.directories += 1;
    } else {
      counts.links += 1;
    }
  });
  if (index !== plan.length) throw changedWhileExtracting(archiveFile);
  return counts;
}

async function writeEntry(root: string, planned: PlannedEntry, entry: ReadEntry, aborted: AbortSignal): Promise<void> {
  await createParentDirectories(root, planned);
  const target = path.join(root, ...planned.parts);
  const existing = await lstatIfExists(target);
  if (planned.kind === 'directory') {
    if (existing !== undefined && !existing.isDirectory()) await unlink(target);
    if (existing === undefined || !existing.isDirectory()) await mkdir(target, { mode: 0o755 });
    entry.resume();
    return;
  }
  // A later entry replaces an earlier one, as with tar; removing it first
  // means the new file is never written through an old link.
  if (existing !== undefined) {
    if (existing.isDirectory()) throw new OutpostError('archive_invalid', `archive entry ${describeEntry(planned.rawPath)} replaces a directory`);
    await unlink(target);
  }
  switch (planned.kind) {
    case 'file':
      // 'wx' fails rather than follow anything that appeared at the path.
      await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: planned.executable ? 0o755 : 0o644 }), { signal: aborted });
      return;
    case 'symlink':
      entry.resume();
      await symlink(planned.linkTarget, target);
      return;
    case 'hardlink': {
      entry.resume();
      const source = path.join(root, ...planned.linkParts);
      if (!(await lstatIfExists(source))?.isFile()) {
        throw new OutpostError('archive_invalid', `hard link ${describeEntry(planned.rawPath)} points to ${describeEntry(planned.linkTarget)}, which is not a file`);
      }
      await link(source, target);
      return;
    }
  }
}

/** Creates missing parents one by one, refusing to pass through anything but a real directory. */
async function createParentDirectories(root: string, planned: PlannedEntry): Promise<void> {
  let current = root;
  for (const part of planned.parts.slice(0, -1)) {
    current = path.join(current, part);
    const stats = await lstatIfExists(current);
    if (stats === undefined) {
      await mkdir(current, { mode: 0o755 });
    } else if (stats.isSymbolicLink()) {
      throw new OutpostError('archive_link_escape', `archive entry ${describeEntry(planned.rawPath)} would be written through a symbolic link`);
    } else if (!stats.isDirectory()) {
      throw new OutpostError('archive_invalid', `archive entry ${describeEntry(planned.rawPath)} is below a file`);
    }
  }
}

/** Second opinion from the kernel: every link that resolves must land inside the root. */
async function checkLinksOnDisk(root: string, plan: readonly (PlannedEntry | undefined)[]): Promise<void> {
  const realRoot = await realpath(root);
  for (const planned of plan) {
    if (planned?.kind !== 'symlink') continue;
    let resolved: string;
    try {
      resolved = await realpath(path.join(root, ...planned.parts));
    } catch {
      continue; // dangling (or replaced later): the model in archive-tree.ts already checked it
    }
    if (resolved !== realRoot && !resolved.startsWith(realRoot + path.sep)) {
      throw new OutpostError('archive_link_escape', `symbolic link ${describeEntry(planned.rawPath)} resolves outside the configuration directory`);
    }
  }
}

async function lstatIfExists(file: string): Promise<Awaited<ReturnType<typeof lstat>> | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function changedWhileExtracting(name: string): OutpostError {
  return new OutpostError('archive_invalid', `the configuration archive changed while it was extracted (at ${describeEntry(name)})`);
}
