// The agent's provider cache: answers the engine's questions (which versions
// exist, where is this version's package) from disk when it can, and fills
// itself from the upstream sources otherwise. Concurrent jobs that need the
// same package share one download (single flight); a package is published
// only once verified against the hashes its source vouches for; a job's
// packages are pinned until the job ends, and least recently used packages
// are evicted beyond the size limit, never a pinned one.
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { DownloadFailed, downloadToFile, type UpstreamDispatcher } from '../engines/release-download.ts';
import { matchesAnyHash, packageHashes, type PackageHashes } from './package-hashes.ts';
import { packageName, providerName, type PackageKey, type ProviderAddress } from './provider-address.ts';
import { SourceFailed, type ProviderSource, type UpstreamPackage } from './provider-sources.ts';
import type { ProviderStore, StoredPackage } from './provider-store.ts';

/** One job's use of the cache: what it has pinned, and where to tell it about trouble. */
export interface CacheSession {
  readonly jobId: string;
  /** Writes a line into the job's run log. */
  note(line: string): void;
  readonly pinned: Set<string>;
  readonly served: { fromCache: number; downloaded: number };
}

/** No source could answer (as opposed to every source saying "no such provider"). */
export class UpstreamUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamUnavailable';
  }
}

export interface ProviderCacheOptions {
  store: ProviderStore;
  sources: readonly ProviderSource[];
  /** How long a fetched version list answers without asking upstream again. */
  versionsTtlMs: number;
  /** Total size kept, in bytes; 0: no limit. */
  sizeLimitBytes: number;
  downloadTimeoutMs: number;
  dispatcher: UpstreamDispatcher;
  logger: Logger;
  /** Told of every package served to a job: from disk (`hit`) or fetched for it (`download`); the agent's metrics. */
  onServe?: ((result: 'hit' | 'download') => void) | undefined;
}

/** A download is tried this many times per source when the connection fails (not when the content is wrong). */
const downloadAttempts = 2;

export class ProviderCache {
  readonly #options: ProviderCacheOptions;
  readonly #sessions = new Set<CacheSession>();
  readonly #versionFetches = new Map<string, Promise<string[] | 'not_found'>>();
  readonly #downloads = new Map<string, Promise<StoredPackage | 'not_found'>>();
  #eviction: Promise<void> | undefined;
  #queuedEviction: Promise<void> | undefined;

  constructor(options: ProviderCacheOptions) {
    this.#options = options;
  }

  openSession(jobId: string, note: (line: string) => void): CacheSession {
    const session = { jobId, note, pinned: new Set<string>(), served: { fromCache: 0, downloaded: 0 } };
    this.#sessions.add(session);
    return session;
  }

  /** The job ended: its packages are no longer pinned. */
  closeSession(session: CacheSession): void {
    this.#sessions.delete(session);
  }

  async versions(address: ProviderAddress, session: CacheSession): Promise<string[] | 'not_found'> {
    const { store, versionsTtlMs } = this.#options;
    const stored = await store.readVersions(address);
    if (stored !== undefined && Date.now() - stored.fetchedAt < versionsTtlMs) return stored.versions;
    const name = providerName(address);
    let fetching = this.#versionFetches.get(name);
    if (!fetching) {
      fetching = this.#fetchVersions(address, session);
      this.#versionFetches.set(name, fetching);
      void fetching.finally(() => this.#versionFetches.delete(name)).catch(() => undefined);
    }
    try {
      return await fetching;
    } catch (error) {
      if (stored === undefined) throw error;
      // Stale beats nothing: the packages of those versions are immutable.
      session.note(`${(error as Error).message}; using the version list of ${name} fetched ${new Date(stored.fetchedAt).toISOString()}`);
      return stored.versions;
    }
  }

  /** The package, from the cache or downloaded now; pinned for the session until it closes. */
  async package(key: PackageKey, session: CacheSession): Promise<StoredPackage | 'not_found'> {
    const id = packageId(key);
    session.pinned.add(id);
    const damaged = (damage: { reason: string }) => {
      this.#options.logger.warn({ provider: packageName(key), reason: damage.reason }, 'provider cache entry damaged: removed, fetching it again');
      session.note(`Outpost provider cache: the cached ${packageName(key)} was damaged (${damage.reason}); fetching it again`);
    };
    let download = this.#downloads.get(id);
    if (!download) {
      const cached = await this.#options.store.lookup(key, damaged);
      if (cached !== undefined) {
        session.served.fromCache += 1;
        this.#options.onServe?.('hit');
        await this.#options.store.touch(key);
        return cached;
      }
      download = this.#downloads.get(id);
      if (!download) {
        download = this.#download(key, session);
        this.#downloads.set(id, download);
        void download.finally(() => this.#downloads.delete(id)).catch(() => undefined);
      }
    }
    const result = await download;
    if (result !== 'not_found') {
      session.served.downloaded += 1;
      this.#options.onServe?.('download');
    }
    return result;
  }

  /**
   * Removes least recently used packages while over the size limit, except
   * pinned ones. Runs one at a time; a call during a run queues one more run
   * (shared by every call meanwhile), so the returned promise always covers
   * an eviction that started after the call.
   */
  evict(trigger: string): Promise<void> {
    if (this.#options.sizeLimitBytes <= 0) return Promise.resolve();
    if (this.#queuedEviction) return this.#queuedEviction;
    const running = this.#eviction;
    const next = (running ?? Promise.resolve())
      .then(() => {
        if (this.#queuedEviction === next) this.#queuedEviction = undefined;
        return this.#evictOnce(trigger);
      })
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'provider cache eviction failed'))
      .finally(() => {
        if (this.#eviction === next) this.#eviction = undefined;
      });
    if (running) this.#queuedEviction = next;
    this.#eviction = next;
    return next;
  }

  isPinned(key: PackageKey): boolean {
    const id = packageId(key);
    if (this.#downloads.has(id)) return true;
    for (const session of this.#sessions) if (session.pinned.has(id)) return true;
    return false;
  }

  async #evictOnce(trigger: string): Promise<void> {
    const { store, sizeLimitBytes, logger } = this.#options;
    const entries = (await store.list()).sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    let total = entries.reduce((sum, entry) => sum + entry.size, 0);
    const evicted: string[] = [];
    const kept: string[] = [];
    for (const entry of entries) {
      if (total <= sizeLimitBytes) break;
      if (this.isPinned(entry.key)) {
        kept.push(packageName(entry.key));
        continue;
      }
      await store.remove(entry.key);
      total -= entry.size;
      evicted.push(packageName(entry.key));
    }
    if (evicted.length > 0 || kept.length > 0) {
      logger.info({ trigger, evicted, keptInUse: kept, totalBytes: total, limitBytes: sizeLimitBytes }, 'provider cache eviction');
    }
  }

  async #fetchVersions(address: ProviderAddress, session: CacheSession): Promise<string[] | 'not_found'> {
    const failures: string[] = [];
    for (const source of this.#options.sources.filter((candidate) => candidate.matches(address))) {
      try {
        const versions = await source.versions(address);
        if (versions === 'not_found') continue;
        await this.#options.store.writeVersions(address, { versions, source: source.name, fetchedAt: Date.now() });
        if (failures.length > 0) session.note(`Outpost provider cache: ${failures.join('; ')}; used ${source.name} instead`);
        return versions;
      } catch (error) {
        failures.push(reasonOf(error));
      }
    }
    if (failures.length > 0) throw new UpstreamUnavailable(`could not list the versions of ${providerName(address)}: ${failures.join('; ')}`);
    return 'not_found';
  }

  async #download(key: PackageKey, session: CacheSession): Promise<StoredPackage | 'not_found'> {
    const failures: string[] = [];
    for (const source of this.#options.sources.filter((candidate) => candidate.matches(key))) {
      let upstream: UpstreamPackage | 'not_found';
      try {
        upstream = await source.package(key);
      } catch (error) {
        failures.push(reasonOf(error));
        continue;
      }
      if (upstream === 'not_found') continue;
      try {
        const stored = await this.#downloadFrom(key, upstream);
        if (failures.length > 0) session.note(`Outpost provider cache: ${failures.join('; ')}; used ${source.name} instead`);
        return stored;
      } catch (error) {
        failures.push(reasonOf(error));
      }
    }
    if (failures.length > 0) throw new UpstreamUnavailable(`could not fetch ${packageName(key)}: ${failures.join('; ')}`);
    return 'not_found';
  }

  async #downloadFrom(key: PackageKey, upstream: UpstreamPackage): Promise<StoredPackage> {
    const { store, downloadTimeoutMs, dispatcher, logger } = this.#options;
    for (let attempt = 1; ; attempt += 1) {
      const partial = store.partialPath();
      const started = Date.now();
      try {
        const context = { signal: AbortSignal.timeout(downloadTimeoutMs), timeoutMs: downloadTimeoutMs, dispatcher, headers: upstream.headers };
        const sha256 = await downloadToFile(upstream.url, partial, context);
        // h1: means unpacking the zip: only when the source vouches with nothing else.
        const needsH1 = upstream.expected.length > 0 && !upstream.expected.some((hash) => hash.startsWith('zh:'));
        const hashes: PackageHashes = needsH1
          ? await packageHashes(partial, sha256).catch((error: unknown) => {
              throw new SourceFailed(`${upstream.origin}: the package of ${packageName(key)} is not a valid zip archive (${(error as Error).message})`);
            })
          : { zh: `zh:${sha256}` };
        if (upstream.expected.length > 0 && !matchesAnyHash(hashes, upstream.expected)) {
          throw new SourceFailed(`${upstream.origin}: the package of ${packageName(key)} does not match its published checksum`);
        }
        const stored = await store.publish(key, partial, hashes, upstream.origin);
        logger.info(
          { provider: packageName(key), source: upstream.origin, bytes: stored.size, ms: Date.now() - started, signed: upstream.signed, verified: upstream.expected.length > 0 },
          'provider package cached',
        );
        void this.evict('download');
        return stored;
      } catch (error) {
        await rm(partial, { force: true });
        const retryable = error instanceof DownloadFailed && (error.status === undefined || error.status >= 500);
        if (!retryable || attempt >= downloadAttempts) throw error;
        logger.warn({ provider: packageName(key), source: upstream.origin, err: reasonOf(error) }, 'provider download failed; retrying');
      }
    }
  }
}

function packageId(key: PackageKey): string {
  return `${providerName(key)}/${key.version}/${key.platform}`;
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
