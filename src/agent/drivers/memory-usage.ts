// How drivers measure a sandbox's memory for the memory guard
// (memory-guard.ts): the local driver sums the resident memory of the job's
// process group; the docker driver takes the container's usage as `docker
// stats` shows it.
import { readdir, readFile } from 'node:fs/promises';

/** The process group of a process, from its /proc/PID/stat (field 5). */
export function parseProcessGroup(stat: string): number | undefined {
  // The command name (field 2) may contain spaces and parentheses: count fields after its last `)`.
  const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  return Number.isInteger(group) && group > 0 ? group : undefined;
}

/** Resident set size in kB, from /proc/PID/status. */
export function parseResidentKb(status: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) : undefined;
}

/**
 * Resident bytes of every process in group `group` (the engine, its
 * providers, provisioners). Shared pages are counted once per process, so
 * the sum errs high, which is the safe side for a guard. Processes come and
 * go while /proc is read: one that is gone is skipped. The kB figure of
 * /proc/PID/status is used rather than pages, whose size varies by platform.
 */
export async function processGroupResidentBytes(group: number, procDir = '/proc'): Promise<number | undefined> {
  const pids = (await readdir(procDir)).filter((name) => /^\d+$/.test(name));
  const sizes = await Promise.all(
    pids.map(async (pid) => {
      try {
        if (parseProcessGroup(await readFile(`${procDir}/${pid}/stat`, 'utf8')) !== group) return undefined;
        return parseResidentKb(await readFile(`${procDir}/${pid}/status`, 'utf8'));
      } catch {
        return undefined;
      }
    }),
  );
  const found = sizes.filter((kb): kb is number => kb !== undefined);
  return found.length === 0 ? undefined : found.reduce((sum, kb) => sum + kb, 0) * 1024;
}

/** The part of the container stats API's answer the guard reads. */
export interface ContainerMemoryStats {
  memory_stats?: { usage?: number; stats?: Record<string, number | undefined> };
}

/**
 * Usage minus the inactive page cache, as the docker CLI computes it
 * (`total_inactive_file` on cgroup v1, `inactive_file` on v2): the cache
 * the kernel can drop before it would kill for memory does not count.
 */
export function containerMemoryInUse(stats: ContainerMemoryStats): number | undefined {
  const usage = stats.memory_stats?.usage;
  if (usage === undefined) return undefined;
  const inner = stats.memory_stats?.stats ?? {};
  const v1 = inner.total_inactive_file;
  if (v1 !== undefined && v1 < usage) return usage - v1;
  const v2 = inner.inactive_file;
  if (v2 !== undefined && v2 < usage) return usage - v2;
  return usage;
}
