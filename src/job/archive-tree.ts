// The rules a configuration archive must follow, checked entry by entry on a
// model of the tree the archive would produce, before anything is written.
// The archive comes from users, so every rule rejects rather than rewrites:
// node-tar's habit of stripping "../" and leading "/" would silently extract a
// different tree from the one the user uploaded.
//
// Rules: no absolute paths; no ".." leaving the root; no device, fifo or other
// special entries; no entry written through a symbolic link (a real tar never
// produces one, and it is the classic way to escape the root); symbolic links
// must resolve inside the root, following other links of the archive exactly
// as the kernel will; hard links must name a regular file extracted earlier.
import { OutpostError } from '../protocol/errors.ts';
import { formatByteSize } from './byte-size.ts';

export type ArchiveEntryKind = 'directory' | 'file' | 'symlink' | 'hardlink';

/** What the tar header says about an entry (node-tar's ReadEntry fields). */
export interface ArchiveHeader {
  readonly type: string;
  readonly path: string;
  readonly linkpath?: string | undefined;
  readonly size: number;
  readonly mode?: number | undefined;
}

/** An admitted entry, with the normalized path it is written to. */
export interface PlannedEntry {
  readonly rawPath: string;
  /** Path components below the root; never empty. */
  readonly parts: readonly string[];
  readonly kind: ArchiveEntryKind;
  /** Symbolic link: the target as written. Hard link: unused (see linkParts). */
  readonly linkTarget: string;
  /** Hard link: components of the linked file below the root. */
  readonly linkParts: readonly string[];
  readonly size: number;
  readonly executable: boolean;
}

export interface ArchiveLimits {
  /** Most bytes the archive may expand to (the decompressed tar stream). */
  readonly maxBytes: number;
  /** Most entries; configurations have thousands of files at most. */
  readonly maxEntries: number;
}

const kindsByTarType: Readonly<Record<string, ArchiveEntryKind>> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'directory',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
};

/** The kernel gives up after 40 links in one lookup; so do we. */
const maxLinkHops = 40;

interface TreeNode {
  readonly kind: ArchiveEntryKind;
  readonly linkTarget: string;
}

export function describeEntry(raw: string): string {
  return JSON.stringify(raw);
}

/**
 * Splits an entry path into components, rejecting absolute paths and ".."
 * that would leave the root; ".." that stays inside is resolved.
 */
export function normalizeEntryPath(raw: string): string[] {
  if (raw.includes('\0')) throw new OutpostError('archive_invalid', `archive entry ${describeEntry(raw)} has a NUL byte in its name`);
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[A-Za-z]:/.test(raw)) {
    throw new OutpostError('archive_absolute_path', `archive entry ${describeEntry(raw)} has an absolute path`);
  }
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) {
        throw new OutpostError('archive_path_traversal', `archive entry ${describeEntry(raw)} leaves the configuration directory`);
      }
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts;
}

export class ArchiveTree {
  readonly #limits: ArchiveLimits;
  readonly #nodes = new Map<string, TreeNode>();
  #entries = 0;
  #declaredBytes = 0;

  constructor(limits: ArchiveLimits) {
    this.#limits = limits;
  }

  /** Checks one entry; returns where to write it, or undefined for the root directory itself. */
  admit(header: ArchiveHeader): PlannedEntry | undefined {
    const name = describeEntry(header.path);
    this.#entries += 1;
    if (this.#entries > this.#limits.maxEntries) {
      throw new OutpostError('archive_too_large', `the archive has more than ${this.#limits.maxEntries} entries (at ${name})`);
    }
    const kind = kindsByTarType[header.type];
    if (kind === undefined) {
      throw new OutpostError('archive_unsupported_entry', `archive entry ${name} is a ${header.type}; only files, directories and links are allowed`);
    }
    const parts = normalizeEntryPath(header.path);
    if (parts.length === 0) {
      if (kind === 'directory') return undefined;
      throw new OutpostError('archive_invalid', `archive entry ${name} is a ${kind} in place of the root directory`);
    }
    this.#checkParents(parts, name);
    const key = parts.join('/');
    if (this.#nodes.get(key)?.kind === 'directory' && kind !== 'directory') {
      throw new OutpostError('archive_invalid', `archive entry ${name} replaces a directory with a ${kind}`);
    }
    const size = kind === 'file' ? header.size : 0;
    this.#declaredBytes += size;
    if (this.#declaredBytes > this.#limits.maxBytes) {
      throw new OutpostError('archive_too_large', `the archive expands beyond the limit of ${formatByteSize(this.#limits.maxBytes)} (at ${name})`);
    }
    const linkTarget = header.linkpath ?? '';
    let linkParts: string[] = [];
    if (kind === 'symlink') this.#checkSymlinkTarget(parts, linkTarget, name);
    if (kind === 'hardlink') linkParts = this.#checkHardLinkTarget(linkTarget, name);
    this.#nodes.set(key, { kind, linkTarget });
    return { rawPath: header.path, parts, kind, linkTarget, linkParts, size, executable: ((header.mode ?? 0) & 0o111) !== 0 };
  }

  /**
   * Checks every symbolic link against the finished tree: a link may point
   * through links that came later in the archive, so only now can it be
   * resolved the way the kernel will resolve it.
   */
  checkLinks(): void {
    for (const [key, node] of this.#nodes) {
      if (node.kind !== 'symlink') continue;
      if (this.#resolvesOutside(key.split('/'), node.linkTarget)) {
        throw new OutpostError('archive_link_escape', `symbolic link ${describeEntry(key)} -> ${describeEntry(node.linkTarget)} resolves outside the configuration directory`);
      }
    }
  }

  #checkParents(parts: readonly string[], name: string): void {
    for (let depth = 1; depth < parts.length; depth += 1) {
      const key = parts.slice(0, depth).join('/');
      const node = this.#nodes.get(key);
      if (node === undefined) {
        // Archives may omit directory entries; the writer creates them.
        this.#nodes.set(key, { kind: 'directory', linkTarget: '' });
      } else if (node.kind === 'symlink') {
        throw new OutpostError('archive_link_escape', `archive entry ${name} would be written through the symbolic link ${describeEntry(key)}`);
      } else if (node.kind !== 'directory') {
        throw new OutpostError('archive_invalid', `archive entry ${name} is below ${describeEntry(key)}, which is not a directory`);
      }
    }
  }

  #checkSymlinkTarget(parts: readonly string[], target: string, name: string): void {
    if (target === '') throw new OutpostError('archive_invalid', `symbolic link ${name} has no target`);
    if (target.startsWith('/') || target.startsWith('\\') || /^[A-Za-z]:/.test(target)) {
      throw new OutpostError('archive_link_escape', `symbolic link ${name} points to the absolute path ${describeEntry(target)}`);
    }
    // Early, precise message for the plain case; checkLinks() follows chains.
    if (this.#resolvesOutside(parts, target, false)) {
      throw new OutpostError('archive_link_escape', `symbolic link ${name} -> ${describeEntry(target)} points outside the configuration directory`);
    }
  }

  #checkHardLinkTarget(target: string, name: string): string[] {
    let targetParts: string[];
    try {
      targetParts = normalizeEntryPath(target);
    } catch (error) {
      if (!(error instanceof OutpostError) || error.code === 'archive_invalid') throw error;
      throw new OutpostError('archive_link_escape', `hard link ${name} points outside the configuration directory (${describeEntry(target)})`);
    }
    const node = this.#nodes.get(targetParts.join('/'));
    if (targetParts.length === 0 || (node?.kind !== 'file' && node?.kind !== 'hardlink')) {
      throw new OutpostError('archive_invalid', `hard link ${name} points to ${describeEntry(target)}, which is not a file earlier in the archive`);
    }
    return targetParts;
  }

  /**
   * Resolves `target` from the directory holding the link, component by
   * component; with `followLinks`, links met on the way are replaced by their
   * targets, as the kernel does. Parents of admitted entries are never links,
   * so the starting directory is a real one.
   */
  #resolvesOutside(linkParts: readonly string[], target: string, followLinks = true): boolean {
    const resolved = linkParts.slice(0, -1);
    let pending = target.split('/');
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift() ?? '';
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (resolved.length === 0) return true;
        resolved.pop();
        continue;
      }
      resolved.push(part);
      const node = followLinks ? this.#nodes.get(resolved.join('/')) : undefined;
      if (node?.kind !== 'symlink') continue;
      hops += 1;
      // A longer chain fails in the kernel anyway; refusing it keeps the check finite.
      if (hops > maxLinkHops || node.linkTarget.startsWith('/')) return true;
      resolved.pop();
      pending = [...node.linkTarget.split('/'), ...pending];
    }
    return false;
  }
}
