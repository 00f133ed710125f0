// Plan jobs' working directories, kept for a while after the plan so that
// the run's apply, when this agent claims it, starts where the plan ended:
// the configuration extracted, `.terraform` holding what `init` installed,
// the plan file in place. That saves the apply a download, an extraction and
// an `init` (with many providers or modules, the slowest part of a small
// run). The apply's job operation decides whether to use what it is handed
// (src/job/plan-workdir.ts): only if the plan file is the one the control
// plane holds. Only directories the plan job marked are kept (a plan with
// changes, of a run that may be applied), at most `maxEntries`, each for at
// most `ttlMs`; the oldest go first. An agent start removes what an earlier
// process kept.
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** The plan job's marker (src/job/plan-workdir.ts writes it). */
const applyMayFollowMarker = '.outpost-apply-may-follow';

export interface PlanWorkdirOptions {
  /** Where kept directories live; on the same filesystem as the job directories (rename). */
  readonly dir: string;
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class PlanWorkdirs {
  readonly #options: PlanWorkdirOptions;
  /** Kept directories by run id, oldest first, with when each was kept. */
  readonly #kept = new Map<string, number>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: PlanWorkdirOptions) {
    this.#options = options;
  }

  get enabled(): boolean {
    return this.#options.ttlMs > 0 && this.#options.maxEntries > 0;
  }

  /** Removes what an earlier agent process kept, and starts the expiry sweep. */
  async start(): Promise<void> {
    await rm(this.#options.dir, { recursive: true, force: true });
    if (!this.enabled) return;
    await mkdir(this.#options.dir, { recursive: true, mode: 0o700 });
    this.#sweeper = setInterval(() => void this.sweep(), Math.min(this.#options.ttlMs, 60_000));
    this.#sweeper.unref();
  }

  stop(): void {
    clearInterval(this.#sweeper);
  }

  /** Keeps a finished plan job's directory for its run, if the plan job marked it. */
  async keep(runId: string, workdir: string): Promise<void> {
    if (!this.enabled || !isRunId(runId)) return;
    const marked = await access(path.join(workdir, applyMayFollowMarker)).then(() => true, () => false);
    if (!marked) return;
    await this.#remove(runId);
    try {
      await rename(workdir, this.#path(runId));
    } catch (error) {
      this.#options.logger.warn({ err: (error as Error).message, run: runId }, 'could not keep the plan job\'s working directory');
      return;
    }
    this.#kept.set(runId, this.#now());
    while (this.#kept.size > this.#options.maxEntries) await this.#remove(this.#kept.keys().next().value!);
  }

  /**
   * Moves the run's kept directory to the apply job's `workdir` (which must
   * not exist yet). Returns whether there was one to hand over.
   */
  async handOver(runId: string, workdir: string): Promise<boolean> {
    const keptAt = isRunId(runId) ? this.#kept.get(runId) : undefined;
    if (keptAt === undefined) return false;
    this.#kept.delete(runId);
    if (this.#now() - keptAt > this.#options.ttlMs) {
      await rm(this.#path(runId), { recursive: true, force: true });
      return false;
    }
    try {
      await mkdir(path.dirname(workdir), { recursive: true, mode: 0o700 });
      await rename(this.#path(runId), workdir);
      return true;
    } catch (error) {
      this.#options.logger.warn({ err: (error as Error).message, run: runId }, 'could not hand the plan job\'s working directory to the apply');
      await rm(this.#path(runId), { recursive: true, force: true });
      return false;
    }
  }

  /** Removes directories kept longer than the TTL, and any the map lost track of. */
  async sweep(): Promise<void> {
    const now = this.#now();
    for (const [runId, keptAt] of [...this.#kept]) {
      if (now - keptAt > this.#options.ttlMs) await this.#remove(runId);
    }
    const present = await readdir(this.#options.dir).catch(() => [] as string[]);
    for (const name of present) {
      if (!this.#kept.has(name)) await rm(path.join(this.#options.dir, name), { recursive: true, force: true });
    }
  }

  /** Run ids currently kept, oldest first. */
  keptRuns(): string[] {
    return [...this.#kept.keys()];
  }

  async #remove(runId: string): Promise<void> {
    this.#kept.delete(runId);
    await rm(this.#path(runId), { recursive: true, force: true });
  }

  #path(runId: string): string {
    return path.join(this.#options.dir, runId);
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }
}

/** Run ids come from the control plane: one that could name a path outside the directory is never kept. */
function isRunId(runId: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(runId);
}
