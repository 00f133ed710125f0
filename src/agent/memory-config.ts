// The agent's memory guard settings (memory-guard.ts, docs/reliability.md
// "Memory guard"), part of the agent's settings table (config.ts). The
// Scalr agent's SCALR_AGENT_MEMORY_MONITOR_* names are aliases.
import { asBool, asDurationMs, asInt } from '../config/settings.ts';

export const memorySettings = {
  memoryMonitorEnabled: {
    env: ['OUTPOST_AGENT_MEMORY_MONITOR_ENABLED', 'SCALR_AGENT_MEMORY_MONITOR_ENABLED'],
    default: 'true',
    description: 'Watch each running job\'s memory and, at the soft limit, interrupt it (as a cancel does: the engine stops at a safe point and saves state) before the hard limit kills it. The run then errors with `memory_limit`. Needs a known limit (`OUTPOST_AGENT_MEMORY_LIMIT_MB`); see docs/reliability.md.',
    parse: asBool,
  },
  memoryMonitorSoftLimitPercent: {
    env: ['OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT', 'SCALR_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT'],
    default: '80',
    description: 'The soft limit, in percent of the job\'s memory limit, at which the job is interrupted.',
    parse: asInt(1, 100),
  },
  memoryMonitorWarnPercent: {
    env: ['OUTPOST_AGENT_MEMORY_MONITOR_WARN_PERCENT', 'SCALR_AGENT_MEMORY_MONITOR_WARN_PERCENT'],
    default: '90',
    description: 'In percent of the soft limit: from this use on, a warning is written into the run log once (the job goes on). `100`: no warning before the soft limit.',
    parse: asInt(1, 100),
  },
  memoryMonitorInterval: {
    env: ['OUTPOST_AGENT_MEMORY_MONITOR_INTERVAL'],
    default: '2s',
    description: 'How often a running job\'s memory is measured.',
    parse: asDurationMs,
  },
  memoryLimitMb: {
    env: ['OUTPOST_AGENT_MEMORY_LIMIT_MB'],
    description: 'Memory limit of each job, in MiB, that the memory guard\'s percentages refer to. Default: with the docker driver, the container limit (`OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT`); with the local driver, the agent\'s own cgroup memory limit divided by `OUTPOST_AGENT_CONCURRENCY` (jobs share the agent\'s cgroup). Without either, the guard is off (the agent logs so at start).',
    parse: asInt(16, 1_048_576),
  },
} as const;
