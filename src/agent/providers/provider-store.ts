// The provider cache on disk:
//   <root>/packages/<host>/<ns>/<type>/<version>/<platform>.zip   the package, as published upstream
//   <root>/packages/<host>/<ns>/<type>/<version>/<platform>.json  its record: size and hashes; mtime = last use
//   <root>/versions/<host>/<ns>/<type>.json                       the last version list fetched upstream
//   <root>/.partial/                                              downloads in progress
// A package exists only when its record does, and the record is written (by
// rename) after the zip is complete and verified, so a reader never sees a
// partial package and a crash leaves debris in .partial, never an entry. The
// zip is checked against its record before it is first served by this
// process (and again whenever its size or mtime changes), so a truncated or
// damaged file is dropped and fetched again instead of being handed out.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileSha256 } from './package-hashes.ts';
import type { PackageHashes } from './package-hashes.ts';
import type { PackageKey, ProviderAddress } from './provider-address.ts';

export interface StoredPackage {
  key: PackageKey;
  file: string;
  size: number;
  hashes: PackageHashes;
  /** Epoch ms. */
  lastUsedAt: number;
}

interface PackageRecord {
  size: number;
  zh: string;
  h1?: string | undefined;
  /** Where it came from, for the operator. */
  source: string;
  storedAt: string;
}

export interface StoredVersions {
  versions: string[];
  source: string;
  /** Epoch ms. */
  fetchedAt: number;
}

export type Damage = { key: PackageKey; reason: string };

export class ProviderStore {
  readonly root: string;
  /** Files verified by this process: path → identity (inode, size, mtime) at verification. */
  readonly #verified = new Map<string, string>();

  constructor(root: string) {
    this.root = root;
  }

  /** Creates the layout and removes what interrupted downloads left behind. */
  async open(): Promise<void> {
    await rm(this.#partialDir(), { recursive: true, force: true });
    await mkdir(this.#partialDir(), { recursive: true, mode: 0o700 });
    await mkdir(path.join(this.root, 'packages'), { recursive: true });
  }

  /** A fresh path for a download; publish() moves it into place. */
  partialPath(): string {
    return path.join(this.#partialDir(), `${process.pid}-${randomUUID()}.zip`);
  }

  /**
   * The package if it is cached and intact. A damaged entry is removed (and
   * reported through `onDamage`) so that the caller fetches it again.
   */
  async lookup(key: PackageKey, onDamage: (damage: Damage) => void): Promise<StoredPackage | undefined> {
    const { zip, record: recordFile } = this.#paths(key);
    let record: PackageRecord;
    let recordMtime: number;
    try {
      const [text, recordStat] = await Promise.all([readFile(recordFile, 'utf8'), stat(recordFile)]);
      record = JSON.parse(text) as PackageRecord;
      recordMtime = recordStat.mtimeMs;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return this.#drop(key, `its record is unreadable (${(error as Error).message})`, onDamage);
    }
    const zipStat = await stat(zip).catch(() => undefined);
    if (zipStat === undefined) return this.#drop(key, 'its zip file is missing', onDamage);
    if (zipStat.size !== record.size) return this.#drop(key, `its zip file has ${zipStat.size} bytes, ${record.size} expected`, onDamage);
    const identity = `${zipStat.ino}:${zipStat.size}:${zipStat.mtimeMs}`;
    if (this.#verified.get(zip) !== identity) {
      const sha256 = await fileSha256(zip);
      if (`zh:${sha256}` !== record.zh) return this.#drop(key, 'its zip file does not match its recorded SHA-256', onDamage);
      this.#verified.set(zip, identity);
    }
    return { key, file: zip, size: record.size, hashes: { zh: record.zh, h1: record.h1 }, lastUsedAt: recordMtime };
  }

  /** Moves a verified download into place; the record, written last, makes it visible. */
  async publish(key: PackageKey, download: string, hashes: PackageHashes, source: string): Promise<StoredPackage> {
    const { zip, record: recordFile } = this.#paths(key);
    await mkdir(path.dirname(zip), { recursive: true });
    const size = (await stat(download)).size;
    await rename(download, zip);
    const record: PackageRecord = { size, zh: hashes.zh, h1: hashes.h1, source, storedAt: new Date().toISOString() };
    await writeAtomically(this, recordFile, JSON.stringify(record, null, 2));
    const zipStat = await stat(zip);
    this.#verified.set(zip, `${zipStat.ino}:${zipStat.size}:${zipStat.mtimeMs}`);
    return { key, file: zip, size, hashes, lastUsedAt: Date.now() };
  }

  /** Records a use (the record's mtime), which survives an agent restart. */
  async touch(key: PackageKey): Promise<void> {
    const now = new Date();
    await utimes(this.#paths(key).record, now, now).catch(() => undefined);
  }

  /** Removes a package: the record first, so that it disappears at once for readers. */
  async remove(key: PackageKey): Promise<void> {
    const { zip, record } = this.#paths(key);
    await unlink(record).catch(() => undefined);
    this.#verified.delete(zip);
    await unlink(zip).catch(() => undefined);
  }

  /** Every cached package, from the records (a zip without a record is debris of a crash and is removed). */
  async list(): Promise<StoredPackage[]> {
    const found: StoredPackage[] = [];
    const base = path.join(this.root, 'packages');
    for (const hostname of await names(base)) {
      for (const namespace of await names(path.join(base, hostname))) {
        for (const type of await names(path.join(base, hostname, namespace))) {
          for (const version of await names(path.join(base, hostname, namespace, type))) {
            const dir = path.join(base, hostname, namespace, type, version);
            for (const file of await names(dir)) {
              const match = /^(.+)\.json$/.exec(file);
              if (!match) continue;
              const key = { hostname, namespace, type, version, platform: match[1]! };
              const recordStat = await stat(path.join(dir, file)).catch(() => undefined);
              const record = await readFile(path.join(dir, file), 'utf8').then((text) => JSON.parse(text) as PackageRecord).catch(() => undefined);
              if (recordStat === undefined || record === undefined) continue;
              found.push({ key, file: this.#paths(key).zip, size: record.size, hashes: { zh: record.zh, h1: record.h1 }, lastUsedAt: recordStat.mtimeMs });
            }
          }
        }
      }
    }
    return found;
  }

  async readVersions(address: ProviderAddress): Promise<StoredVersions | undefined> {
    try {
      return JSON.parse(await readFile(this.#versionsFile(address), 'utf8')) as StoredVersions;
    } catch {
      return undefined;
    }
  }

  async writeVersions(address: ProviderAddress, versions: StoredVersions): Promise<void> {
    const file = this.#versionsFile(address);
    await mkdir(path.dirname(file), { recursive: true });
    await writeAtomically(this, file, JSON.stringify(versions));
  }

  async #drop(key: PackageKey, reason: string, onDamage: (damage: Damage) => void): Promise<undefined> {
    onDamage({ key, reason });
    await this.remove(key);
    return undefined;
  }

  #paths(key: PackageKey): { zip: string; record: string } {
    const dir = path.join(this.root, 'packages', key.hostname, key.namespace, key.type, key.version);
    return { zip: path.join(dir, `${key.platform}.zip`), record: path.join(dir, `${key.platform}.json`) };
  }

  #versionsFile(address: ProviderAddress): string {
    return path.join(this.root, 'versions', address.hostname, address.namespace, `${address.type}.json`);
  }

  #partialDir(): string {
    return path.join(this.root, '.partial');
  }
}

async function writeAtomically(store: ProviderStore, file: string, content: string): Promise<void> {
  const staging = store.partialPath();
  await writeFile(staging, content, { mode: 0o644 });
  await rename(staging, file);
}

async function names(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}
