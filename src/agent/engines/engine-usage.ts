// Which cached engine versions jobs are using right now, and when each was
// last used. Eviction (binary-eviction.ts) reads this so it never removes a
// binary a running job holds; across restarts it has the version directory's mtime.
import type { Engine } from '../../protocol/statuses.ts';

export interface EngineUsageEntry {
  engine: Engine;
  version: string;
  /** Leases not yet released. */
  inUse: number;
  /** Epoch milliseconds of the last acquire or release. */
  lastUsedAt: number;
}

export class EngineUsage {
  private readonly entries = new Map<string, EngineUsageEntry>();

  begin(engine: Engine, version: string, now = Date.now()): void {
    const entry = this.entries.get(key(engine, version));
    if (entry === undefined) this.entries.set(key(engine, version), { engine, version, inUse: 1, lastUsedAt: now });
    else {
      entry.inUse += 1;
      entry.lastUsedAt = now;
    }
  }

  end(engine: Engine, version: string, now = Date.now()): void {
    const entry = this.entries.get(key(engine, version));
    if (entry === undefined) return;
    entry.inUse = Math.max(0, entry.inUse - 1);
    entry.lastUsedAt = now;
  }

  isInUse(engine: Engine, version: string): boolean {
    return (this.entries.get(key(engine, version))?.inUse ?? 0) > 0;
  }

  /** A copy of one entry, or undefined when this process never used the version. */
  get(engine: Engine, version: string): EngineUsageEntry | undefined {
    const entry = this.entries.get(key(engine, version));
    return entry === undefined ? undefined : { ...entry };
  }

  /** Copies of the entries, so callers cannot change the counts. */
  snapshot(): EngineUsageEntry[] {
    return [...this.entries.values()].map((entry) => ({ ...entry }));
  }
}

function key(engine: Engine, version: string): string {
  return `${engine}/${version}`;
}
