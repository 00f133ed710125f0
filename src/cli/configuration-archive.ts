// Packs a configuration directory into the .tar.gz a configuration version
// takes. Left out: what is local to one machine or secret and never part of
// the configuration — the engine's working data (.terraform/, but not
// .terraform.lock.hcl, which pins providers and belongs to the config), VCS
// data (.git/), local state files (*.tfstate*, which may hold secrets) and
// Outpost's own data directory (.outpost/). Symlinks are stored as symlinks,
// never followed: the job operation checks where they point when it unpacks.
import fs from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from './exit-codes.ts';

const excludedDirectories = new Set(['.terraform', '.git', '.outpost']);

/** Whether a path (relative to the configuration root, `/`-separated) stays out of the archive. */
export function isExcludedFromConfiguration(relativePath: string): boolean {
  const segments = relativePath.split(/[\\/]/).filter((part) => part !== '' && part !== '.');
  return segments.some((part) => excludedDirectories.has(part) || part.includes('.tfstate'));
}

export interface PackedConfiguration {
  readonly archive: Buffer;
  readonly root: string;
}

export async function packConfiguration(directory: string): Promise<PackedConfiguration> {
  const root = path.resolve(directory);
  const stat = await fs.stat(root).catch(() => undefined);
  if (stat === undefined) throw new UsageError(`configuration directory ${directory} does not exist`);
  if (!stat.isDirectory()) throw new UsageError(`${directory} is not a directory`);
  // Top-level names are listed here (rather than packing ".") so archive
  // paths carry no "./" prefix, the form TFE archives use.
  const entries = (await fs.readdir(root)).filter((name) => !isExcludedFromConfiguration(name)).sort();
  if (entries.length === 0) throw new UsageError(`${directory} has no files to upload`);
  // Loaded here, not at start: every `outpost` process (agents, the server) loads the CLI, few upload.
  const { create } = await import('tar');
  const pack = create(
    {
      cwd: root,
      gzip: true,
      portable: true,
      follow: false,
      filter: (entryPath) => !isExcludedFromConfiguration(entryPath),
    },
    entries,
  );
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
  return { archive: Buffer.concat(chunks), root };
}
