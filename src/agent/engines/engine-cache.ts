// The agent's engine binary cache: hands each job a verified tofu/terraform
// binary of the version it asks for. In order: the cached copy, a download
// from the official site or the configured mirror (one per version at a
// time in this process), and only when the download cannot happen, a local
// binary that reports exactly that version, then an OpenTofu built from its
// Go module (engine-source-build.ts) when a Go toolchain is at hand. A
// checksum mismatch never falls back: it may be tampering, and the operator
// has to look at it.
import type { Logger } from 'pino';
import type { EngineRef } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import type { Engine } from '../../protocol/statuses.ts';
import { evictBinaries, evictionEnabled, type EvictionGuard, type EvictionPolicy, type EvictionReport } from './binary-eviction.ts';
import { findInstalled, removeStalePartials, touchEntry } from './cache-layout.ts';
import { EngineUsage, type EngineUsageEntry } from './engine-usage.ts';
import { findLocalEngine } from './local-engine.ts';
import { GoToolchainMissing, SourceBuildFailed, type EngineSourceBuild } from './engine-source-build.ts';
import { DownloadFailed } from './release-download.ts';
import {
  engineDisplayName,
  isValidEngineVersion,
  redactUrl,
  releaseFiles,
  releasePlatform,
  type Platform,
} from './release-files.ts';
import { installRelease } from './release-install.ts';
import { buildDuration, unavailableMessage, type BuildOutlook } from './unavailable-message.ts';
import { ReleaseZipInvalid } from './release-zip.ts';

export interface EngineCacheOptions {
  /** `<agent data dir>/binaries`. */
  dir: string;
  /** OUTPOST_AGENT_BINARY_MIRROR: base URL used instead of the official release sites. */
  mirror?: string | undefined;
  /** OUTPOST_AGENT_ENGINE_PATH: a binary, or a directory holding tofu/terraform. */
  localPath?: string | undefined;
  /** The PATH searched as the last resort. */
  searchPath?: string | undefined;
  downloadTimeoutMs: number;
  logger: Logger;
  /** Release platform; default from process.platform/arch (x64 → amd64). */
  platform?: Platform;
  /** OUTPOST_AGENT_BINARY_CACHE_SIZE_LIMIT_MB in bytes; 0 or absent: no limit. */
  sizeLimitBytes?: number;
  /** OUTPOST_AGENT_BINARY_CACHE_THRESHOLD_DAYS in ms; 0 or absent: never by age. */
  unusedThresholdMs?: number;
  /** Builds OpenTofu from source as the last resort; absent when OUTPOST_AGENT_ENGINE_BUILD=off. */
  sourceBuild?: EngineSourceBuild | undefined;
}

export interface EngineLease {
  path: string;
  engine: Engine;
  version: string;
  source: 'cache' | 'download' | 'local' | 'built';
  /** The job no longer needs the binary. Calling it again does nothing. */
  release(): void;
}

type Installed = { binary: string; source: 'cache' | 'download' };

/** How long a failed download is not tried again (the local fallback is used meanwhile). */
const downloadRetryAfterMs = 5 * 60_000;

export class EngineCache {
  private readonly options: EngineCacheOptions;
  private readonly platform: Platform;
  private readonly usage = new EngineUsage();
  /** Downloads in progress, by engine/version: later callers wait for the same one. */
  private readonly downloads = new Map<string, Promise<Installed>>();
  private staleSweep: Promise<void> | undefined;
  /**
   * Failed downloads by engine/version. An offline agent would otherwise
   * retry (and, behind a silent firewall, wait out the timeout) on every job.
   */
  private readonly recentFailures = new Map<string, { at: number; failure: string }>();
  /** Versions eviction has claimed, settled once their directory is moved away. */
  private readonly removing = new Map<string, Promise<void>>();
  /** The eviction run in progress (runs never overlap). */
  private evictionRun: Promise<unknown> = Promise.resolve();

  constructor(options: EngineCacheOptions) {
    this.options = options;
    this.platform = options.platform ?? releasePlatform(process.platform, process.arch);
  }

  /** Returns a usable binary for the engine version; `note` writes a line to the run log. */
  async acquire(ref: EngineRef, note: (line: string) => void): Promise<EngineLease> {
    const { name: engine, version } = ref;
    if (!isValidEngineVersion(version)) {
      throw new OutpostError(
        'engine_unavailable',
        `${JSON.stringify(version)} is not a valid ${engineDisplayName(engine)} version: expected a release version such as 1.10.10.`,
      );
    }
    const key = `${engine}/${version}`;
    // Pinned before the cache is looked at: an eviction that starts later
    // skips this version, and one that claimed it earlier has moved it away
    // once `removing` settles, so findInstalled() never sees a doomed entry.
    this.usage.begin(engine, version);
    try {
      await this.removing.get(key);
      const lease = await this.acquirePinned(engine, version, note);
      // A local or built binary is not in the cache: nothing to protect.
      if (lease.source === 'local' || lease.source === 'built') this.usage.end(engine, version);
      return lease;
    } catch (error) {
      this.usage.end(engine, version);
      throw error;
    }
  }

  /**
   * Removes versions unused past the threshold, then the least recently used
   * while over the size limit; never one a job holds. Runs after any run in
   * progress. Resolves with the report, or undefined when eviction is off or
   * failed (the failure is logged: a full cache must not fail jobs).
   */
  evict(trigger: string): Promise<EvictionReport | undefined> {
    const policy: EvictionPolicy = {
      sizeLimitBytes: this.options.sizeLimitBytes ?? 0,
      unusedThresholdMs: this.options.unusedThresholdMs ?? 0,
    };
    if (!evictionEnabled(policy)) return Promise.resolve(undefined);
    const run = this.evictionRun.then(() =>
      evictBinaries({ dir: this.options.dir, policy, guard: this.evictionGuard, logger: this.options.logger, trigger }).catch((error: unknown) => {
        this.options.logger.warn({ err: error, trigger }, 'binary cache eviction failed');
        return undefined;
      }),
    );
    this.evictionRun = run;
    return run;
  }

  private readonly evictionGuard: EvictionGuard = {
    claim: (engine, version, listedAt) => {
      const used = this.usage.get(engine, version);
      // In use, or used since eviction listed the cache (its mtime is stale then).
      if (used !== undefined && (used.inUse > 0 || used.lastUsedAt > listedAt)) return undefined;
      const key = `${engine}/${version}`;
      let settle = (): void => undefined;
      this.removing.set(key, new Promise<void>((resolve) => (settle = resolve)));
      return () => {
        this.removing.delete(key);
        settle();
      };
    },
    lastUsedAt: (engine, version) => this.usage.get(engine, version)?.lastUsedAt,
  };

  private async acquirePinned(engine: Engine, version: string, note: (line: string) => void): Promise<EngineLease> {
    const cached = await findInstalled(this.options.dir, engine, version);
    if (cached !== undefined) {
      note(`Using ${engineDisplayName(engine)} ${version} from the agent's binary cache`);
      return this.cacheLease(engine, version, cached, 'cache');
    }
    const key = `${engine}/${version}`;
    const failedBefore = this.recentFailures.get(key);
    if (failedBefore !== undefined && Date.now() - failedBefore.at < downloadRetryAfterMs) {
      const ago = Math.round((Date.now() - failedBefore.at) / 1000);
      return this.localFallback(engine, version, `${failedBefore.failure}; not retried until ${Math.round(downloadRetryAfterMs / 60_000)} min after the failure ${ago} s ago`, note);
    }
    let installed: Installed;
    try {
      installed = await this.download(engine, version, note);
    } catch (error) {
      if (error instanceof OutpostError && error.code === 'engine_checksum_mismatch') throw error;
      const failure = this.describeFailure(engine, version, error);
      this.recentFailures.set(key, { at: Date.now(), failure });
      return this.localFallback(engine, version, failure, note);
    }
    this.recentFailures.delete(key);
    return this.cacheLease(engine, version, installed.binary, installed.source);
  }

  /** In-use counts and last-use times of cached entries, for eviction and diagnostics. */
  usageSnapshot(): EngineUsageEntry[] {
    return this.usage.snapshot();
  }

  private async download(engine: Engine, version: string, note: (line: string) => void): Promise<Installed> {
    const key = `${engine}/${version}`;
    const running = this.downloads.get(key);
    if (running !== undefined) {
      note(`Waiting for the download of ${engineDisplayName(engine)} ${version} started for another job`);
      const installed = await running;
      note(`Using ${engineDisplayName(engine)} ${version} downloaded for another job`);
      return installed;
    }
    const started = this.install(engine, version, note).finally(() => this.downloads.delete(key));
    this.downloads.set(key, started);
    return started;
  }

  private async install(engine: Engine, version: string, note: (line: string) => void): Promise<Installed> {
    // A download that finished between acquire()'s cache check and now has published already.
    const published = await findInstalled(this.options.dir, engine, version);
    if (published !== undefined) {
      note(`Using ${engineDisplayName(engine)} ${version} from the agent's binary cache`);
      return { binary: published, source: 'cache' };
    }
    await this.sweepStalePartialsOnce();
    const timeoutMs = this.options.downloadTimeoutMs;
    const binary = await installRelease({
      dir: this.options.dir,
      engine,
      version,
      platform: this.platform,
      mirror: this.options.mirror,
      download: { signal: AbortSignal.timeout(timeoutMs), timeoutMs },
      logger: this.options.logger,
      note,
    });
    // In the background: the job that asked has the version pinned already.
    void this.evict('download');
    return { binary, source: 'download' };
  }

  // Leftovers of crashed downloads are removed once per agent process. A
  // download cannot outlive its timeout, so anything older than twice that
  // (and at least an hour, for slow extraction on busy disks) is dead.
  private sweepStalePartialsOnce(): Promise<void> {
    const olderThanMs = Math.max(2 * this.options.downloadTimeoutMs, 60 * 60_000);
    this.staleSweep ??= removeStalePartials(this.options.dir, olderThanMs);
    return this.staleSweep;
  }

  /** The version is pinned already (by acquire()); the lease's release unpins it. */
  private async cacheLease(engine: Engine, version: string, binary: string, source: 'cache' | 'download'): Promise<EngineLease> {
    await touchEntry(this.options.dir, engine, version);
    let released = false;
    return {
      path: binary,
      engine,
      version,
      source,
      release: () => {
        if (released) return;
        released = true;
        this.usage.end(engine, version);
      },
    };
  }

  private async localFallback(
    engine: Engine,
    version: string,
    failure: string,
    note: (line: string) => void,
  ): Promise<EngineLease> {
    const name = `${engineDisplayName(engine)} ${version}`;
    const { found, skipped } = await findLocalEngine({
      engine,
      version,
      localPath: this.options.localPath,
      searchPath: this.options.searchPath,
      note,
    });
    if (found === undefined) return this.builtFallback(engine, version, failure, skipped, note);
    this.options.logger.warn({ engine, version, failure, path: found.path }, 'engine download failed; using a local binary');
    note(`Could not download ${name} (${failure}); using ${found.path} (${found.origin}), which reports version ${version}`);
    return { path: found.path, engine, version, source: 'local', release: () => undefined };
  }

  /**
   * No download and no local binary: an OpenTofu built earlier into the
   * build directory, or one built now from its Go module. Otherwise the
   * error names every way out.
   */
  private async builtFallback(engine: Engine, version: string, failure: string, skipped: string[], note: (line: string) => void): Promise<EngineLease> {
    const builder = this.options.sourceBuild;
    const unavailable = (build: BuildOutlook): never => {
      this.options.logger.warn({ engine, version, failure, skipped, build }, 'engine unavailable');
      const message = unavailableMessage({ engine, version, failure, skipped, build, platform: this.platform, mirror: this.options.mirror, buildDir: builder?.dir });
      throw new OutpostError(build.kind === 'failed' ? 'engine_build_failed' : 'engine_unavailable', message, { skipped });
    };
    if (engine !== 'opentofu') return unavailable({ kind: 'not-buildable' });
    if (builder === undefined) return unavailable({ kind: 'off' });
    const built = await builder.findBuilt(version);
    if (built !== undefined) {
      note(`Could not download OpenTofu ${version} (${failure}); using ${built}, built earlier from its Go module`);
      return { path: built, engine, version, source: 'built', release: () => undefined };
    }
    let go;
    try {
      go = await builder.toolchain();
    } catch (error) {
      if (error instanceof GoToolchainMissing) return unavailable({ kind: 'no-go', skipped: error.skipped });
      throw error;
    }
    note(
      `Could not download OpenTofu ${version} (${failure}), and no local tofu ${version} was found. ` +
        `Building it from its Go module with ${go.version} (${go.path}) into ${builder.dir} instead. ` +
        `${buildDuration} To avoid the build, set OUTPOST_AGENT_BINARY_MIRROR or OUTPOST_AGENT_ENGINE_PATH (docs/caches.md).`,
    );
    try {
      const binary = await builder.build(version, note);
      return { path: binary, engine, version, source: 'built', release: () => undefined };
    } catch (error) {
      if (error instanceof SourceBuildFailed || error instanceof GoToolchainMissing) return unavailable({ kind: 'failed', reason: error.message });
      throw error;
    }
  }

  private describeFailure(engine: Engine, version: string, error: unknown): string {
    if (error instanceof DownloadFailed || error instanceof ReleaseZipInvalid) return error.message;
    const { zipUrl } = releaseFiles(engine, version, this.platform, this.options.mirror);
    const message = error instanceof Error ? error.message : String(error);
    return `${redactUrl(message)}, while installing ${redactUrl(zipUrl)} into ${this.options.dir}`;
  }

}
