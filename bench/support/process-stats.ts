// What the benchmarks read about other processes straight from /proc (Linux):
// CPU time and resident memory of the server, the agent and whatever the
// agent started. process.cpuUsage() only sees the calling process, and the
// server runs in a child, so its numbers come from here.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

// USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100 on every Linux
// Node supports (`getconf CLK_TCK`), and Node has no sysconf to ask.
const ticksPerSecond = 100;

interface StatFields {
  comm: string;
  ppid: number;
  cpuSeconds: number;
  /** CPU seconds of its children that have exited and been waited for. */
  reapedChildrenCpuSeconds: number;
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  return {
    comm,
    ppid: Number(fields[1]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond,
    reapedChildrenCpuSeconds: (Number(fields[13]) + Number(fields[14])) / ticksPerSecond,
  };
}

/** User + system CPU seconds the process (all its threads) has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return stat.cpuSeconds;
}

/** VmRSS in MiB, or undefined when the process is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface ProcessInfo {
  pid: number;
  comm: string;
  rssMiB: number;
}

/** Every live descendant of `pid` (children, grandchildren, …) with its RSS. */
export function descendants(pid: number): ProcessInfo[] {
  const childrenOf = new Map<number, number[]>();
  const comms = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    comms.set(Number(entry), stat.comm);
    childrenOf.set(stat.ppid, [...(childrenOf.get(stat.ppid) ?? []), Number(entry)]);
  }
  const found: ProcessInfo[] = [];
  const pending = [...(childrenOf.get(pid) ?? [])];
  while (pending.length > 0) {
    const next = pending.shift()!;
    const rss = rssMiB(next);
    if (rss !== undefined) found.push({ pid: next, comm: comms.get(next) ?? '?', rssMiB: rss });
    pending.push(...(childrenOf.get(next) ?? []));
  }
  return found;
}

/**
 * CPU seconds of every visible process named `comm` (e.g. the PostgreSQL
 * backends), including those of its children that have exited: a backend
 * whose connection closed during a window (the server's pool lets idle
 * connections go after 10 s) takes its CPU time out of the live processes,
 * and the postmaster that reaped it counts it as its children's. Summing only
 * the live ones made the difference over a window negative.
 */
export function cpuSecondsByName(comm: string): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat?.comm === comm) total += stat.cpuSeconds + stat.reapedChildrenCpuSeconds;
  }
  return total;
}

/** Samples a process's CPU over a window: share of one core, and of the machine. */
export function cpuMeter(pid: number): { stop(): { coreShare: number; seconds: number } } {
  const startCpu = cpuSeconds(pid);
  const startWall = performance.now();
  return {
    stop() {
      const seconds = cpuSeconds(pid) - startCpu;
      return { seconds, coreShare: seconds / ((performance.now() - startWall) / 1000) };
    },
  };
}

export const cpuCount = os.cpus().length;
