// The memory limit each job's memory guard measures against (memory-guard.ts),
// decided once at agent start: the configured one, else what the driver's
// sandboxes are limited to. A local job runs in the agent's own cgroup, so
// its share is the cgroup's limit divided among the jobs that may run at once.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import type { AgentConfig } from './config.ts';

export interface JobMemoryLimit {
  bytes: number;
  /** Where the limit comes from, for the agent's log. */
  source: string;
}

const mib = 1024 * 1024;

/**
 * A cgroup limit file's value in bytes: undefined for `max` (v2), for the
 * v1 "unlimited" (a page-rounded 2^63), and for anything at or above the
 * host's memory, which limits nothing the host does not already.
 */
export function parseCgroupLimit(text: string, hostBytes: number): number | undefined {
  const value = text.trim();
  if (!/^\d+$/.test(value)) return undefined;
  const bytes = Number(value);
  return bytes > 0 && bytes < hostBytes ? bytes : undefined;
}

/**
 * Limit files that apply to this process, from /proc/self/cgroup: its own
 * cgroup's and each ancestor's (a parent's limit binds too), under the v2
 * and the v1 layout. In a container the namespace root is the container's
 * cgroup, which the root paths cover.
 */
export function cgroupLimitFiles(selfCgroup: string, root = '/sys/fs/cgroup'): string[] {
  const files: string[] = [];
  for (const line of selfCgroup.split('\n')) {
    const [, controllers, own] = line.split(':');
    if (own === undefined || !own.startsWith('/')) continue;
    const v2 = controllers === '';
    if (!v2 && !controllers!.split(',').includes('memory')) continue;
    const base = v2 ? root : `${root}/memory`;
    const file = v2 ? 'memory.max' : 'memory.limit_in_bytes';
    const parts = own.split('/').filter((part) => part !== '');
    for (let depth = parts.length; depth >= 0; depth--) files.push([base, ...parts.slice(0, depth), file].join('/'));
  }
  // Without /proc/self/cgroup, the namespace roots of both layouts.
  if (files.length === 0) files.push(`${root}/memory.max`, `${root}/memory/memory.limit_in_bytes`);
  return [...new Set(files)];
}

type ReadText = (file: string) => string | undefined;

const readText: ReadText = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** The tightest memory limit of the cgroups this process is in, in bytes, if any. */
export function cgroupMemoryLimit(read: ReadText = readText, hostBytes = os.totalmem()): number | undefined {
  const limits = cgroupLimitFiles(read('/proc/self/cgroup') ?? '')
    .map((file) => read(file))
    .map((text) => (text === undefined ? undefined : parseCgroupLimit(text, hostBytes)))
    .filter((bytes): bytes is number => bytes !== undefined);
  return limits.length === 0 ? undefined : Math.min(...limits);
}

/** The per-job limit, or undefined when the guard is off; says which (once, at agent start). */
export function jobMemoryLimit(config: AgentConfig, driver: string, logger: Logger, cgroupLimit = cgroupMemoryLimit): JobMemoryLimit | undefined {
  if (!config.memoryMonitorEnabled) {
    logger.info('memory guard off (OUTPOST_AGENT_MEMORY_MONITOR_ENABLED=false)');
    return undefined;
  }
  const limit = limitOf(config, driver, cgroupLimit);
  if (limit === undefined) {
    logger.info('memory guard off: no memory limit is known for jobs (no cgroup limit); set OUTPOST_AGENT_MEMORY_LIMIT_MB to turn it on');
    return undefined;
  }
  logger.info(
    { limitMb: Math.round(limit.bytes / mib), softLimitPercent: config.memoryMonitorSoftLimitPercent, source: limit.source },
    'memory guard on: a job is interrupted at its soft limit',
  );
  return limit;
}

function limitOf(config: AgentConfig, driver: string, cgroupLimit: () => number | undefined): JobMemoryLimit | undefined {
  if (config.memoryLimitMb !== undefined) return { bytes: config.memoryLimitMb * mib, source: 'OUTPOST_AGENT_MEMORY_LIMIT_MB' };
  if (driver === 'docker') return { bytes: config.containerTaskMemLimit * mib, source: 'OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT' };
  // Job pods have limits of their own, in their template (the agent-k8s chart passes the job container's as OUTPOST_AGENT_MEMORY_LIMIT_MB).
  if (driver === 'kubernetes') return undefined;
  const cgroup = cgroupLimit();
  if (cgroup === undefined) return undefined;
  const share = Math.floor(cgroup / config.concurrency);
  return { bytes: share, source: `the agent's cgroup limit of ${Math.round(cgroup / mib)} MiB shared by ${config.concurrency} concurrent job(s)` };
}
