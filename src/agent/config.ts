// The agent's settings, read once from the environment by `outpost agent run`.
// The Scalr agent's SCALR_* names are accepted as aliases so its recipes work as written.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serverUrlOfPoolToken } from '../protocol/pool-token.ts';
import { cacheSettings } from './cache-config.ts';
import { agentRules } from './config-rules.ts';
import { engineSettings } from './engine-config.ts';
import { kubernetesSettings } from './kubernetes-config.ts';
import { observabilitySettings } from './observability-config.ts';
import { memorySettings } from './memory-config.ts';
import { shutdownSettings } from './shutdown-config.ts';
import { vcsSettings } from './vcs-config.ts';
import { asBool, asDurationMs, asEnum, asInt, asString, asUrl, ConfigError, loadSettings, type Env, type SettingsOf } from '../config/settings.ts';

export const agentSettings = {
  url: {
    env: ['OUTPOST_URL', 'SCALR_URL'],
    description: 'URL of the Outpost control plane. Default: the URL the pool token carries (the server\'s OUTPOST_PUBLIC_URL when the token was created), else `http://127.0.0.1:8480`.',
    parse: asUrl,
  },
  token: {
    env: ['OUTPOST_AGENT_TOKEN', 'SCALR_AGENT_TOKEN', 'SCALR_TOKEN'],
    description: 'Pool token the agent registers with (this or OUTPOST_AGENT_TOKEN_FILE is required). Shown once when the token is created. May be the ARN of an AWS Secrets Manager secret holding it (`arn:aws:secretsmanager:…`), read once at start with the environment\'s AWS credentials.',
    parse: (raw: string) => raw.trim(),
    secret: true,
  },
  tokenFile: {
    env: ['OUTPOST_AGENT_TOKEN_FILE'],
    description: 'A file holding the pool token (a mounted secret), read once at start; instead of OUTPOST_AGENT_TOKEN, which keeps it out of the process environment.',
    parse: (raw: string) => path.resolve(raw.trim()),
  },
  name: {
    env: ['OUTPOST_AGENT_NAME', 'SCALR_AGENT_NAME'],
    description: 'Name shown for this agent in the pool. Default: the host name.',
    parse: asString,
  },
  dataDir: {
    env: ['OUTPOST_AGENT_DATA_DIR', 'SCALR_AGENT_DATA_DIR'],
    default: '.outpost/agent',
    description: 'Directory for job working directories and the binary cache. In a container, mount it at the same path on the host.',
    parse: (raw: string) => path.resolve(raw),
  },
  driver: {
    env: ['OUTPOST_AGENT_DRIVER', 'SCALR_AGENT_DRIVER', 'SCALR_DRIVER'],
    default: 'auto',
    description: 'Where jobs run: `docker` (a container per job, through the Docker Engine API), `local` (a subprocess per job), `kubernetes` (a pod per job, through the Kubernetes API; see OUTPOST_AGENT_KUBERNETES_MODE and docs/kubernetes.md), or `auto`: `docker` when a Docker daemon answers, else `local` (the agent logs which and why).',
    parse: asEnum(['auto', 'docker', 'local', 'kubernetes'] as const),
  },
  dockerHost: {
    env: ['DOCKER_HOST'],
    default: 'unix:///var/run/docker.sock',
    description: 'Docker Engine API endpoint for the docker driver: `unix:///path/to/docker.sock` or `tcp://host:port`.',
    parse: asDockerHost,
  },
  containerTaskImage: {
    env: ['OUTPOST_AGENT_CONTAINER_TASK_IMAGE', 'SCALR_AGENT_CONTAINER_TASK_IMAGE'],
    default: 'outpost/runner:latest',
    description: 'Image of the container each job runs in (docker driver). It needs a POSIX shell and glibc; the agent mounts the job operation and the engine into it read-only.',
    parse: asString,
  },
  containerTaskUser: {
    env: ['OUTPOST_AGENT_CONTAINER_TASK_USER'],
    default: 'auto',
    description: 'uid:gid job containers run as. `auto`: `1000:1000` (the runner image\'s `runner` user, who is given the job directory) when the agent runs as root, else the agent\'s own uid:gid (so the job can write the directory the agent made).',
    parse: asUidGid,
  },
  containerTaskCpuLimit: {
    env: ['OUTPOST_AGENT_CONTAINER_TASK_CPU_LIMIT', 'SCALR_AGENT_CONTAINER_TASK_CPU_LIMIT'],
    default: '8',
    description: 'CPU limit of each job container, in cores (fractions allowed, e.g. `0.5`).',
    parse: asCores,
  },
  containerTaskMemLimit: {
    env: ['OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT', 'SCALR_AGENT_CONTAINER_TASK_MEM_LIMIT'],
    default: '16384',
    description: 'Memory limit of each job container, in MiB (no swap). A job killed for exceeding it fails with an out-of-memory error in its run.',
    parse: asInt(16, 1_048_576),
  },
  containerTaskPidsLimit: {
    env: ['OUTPOST_AGENT_CONTAINER_TASK_PIDS_LIMIT'],
    default: '4096',
    description: 'Most processes (and threads) a job container may run at once, so a fork bomb in a configuration cannot exhaust the host\'s process table.',
    parse: asInt(64, 4_194_304),
  },
  containerNetwork: {
    env: ['OUTPOST_AGENT_CONTAINER_NETWORK'],
    default: 'auto',
    description: 'Network of job containers: `auto` (the agent\'s own: `container:<agent>` when the agent runs in a container, `host` otherwise, so jobs reach the control plane at the agent\'s URL), `host`, `bridge`, or a network name.',
    parse: asString,
  },
  concurrency: {
    env: ['OUTPOST_AGENT_CONCURRENCY', 'SCALR_AGENT_CONCURRENCY'],
    default: '1',
    description: 'How many jobs this agent runs at once.',
    parse: asInt(1, 256),
  },
  single: {
    env: ['OUTPOST_AGENT_SINGLE', 'OUTPOST_SINGLE', 'SCALR_AGENT_SINGLE', 'SCALR_SINGLE'],
    default: 'false',
    description: 'Single mode: claim one job, run it, deregister and exit with a code that says how the job ended (docs/cli.md). For serverless tasks and the webhook launchers.',
    parse: asBool,
  },
  singleJobId: {
    env: ['OUTPOST_AGENT_JOB_ID'],
    description: 'Single mode: claim this job only (`job-…`, the `job.id` of the pool webhook\'s payload that started this agent); the pool\'s other jobs stay queued for others. Without it, the next queued job.',
    parse: (raw: string) => {
      if (!/^job-[A-Za-z0-9_-]{1,64}$/.test(raw.trim())) throw new Error('expected a job id such as job-AbC123');
      return raw.trim();
    },
  },
  singleIdleTimeout: {
    env: ['OUTPOST_AGENT_SINGLE_IDLE_TIMEOUT'],
    default: '5m',
    description: 'Single mode: how long to wait for a job before exiting with code 6 (nothing to run), so a task started for a job another agent took does not wait forever.',
    parse: asDurationMs,
  },
  logFormat: {
    env: ['OUTPOST_AGENT_LOG_FORMAT', 'SCALR_AGENT_LOG_FORMAT'],
    default: 'auto',
    description: '`json`, `text`, or `auto` (text on a terminal, JSON otherwise).',
    parse: asEnum(['auto', 'json', 'text'] as const),
  },
  logLevel: {
    env: ['OUTPOST_AGENT_LOG_LEVEL', 'SCALR_AGENT_LOG_LEVEL'],
    default: 'info',
    description: 'Minimum log level: `debug`, `info`, `warn`, `error`.',
    parse: asEnum(['debug', 'info', 'warn', 'error'] as const),
  },
  ...engineSettings,
  killGrace: {
    env: ['OUTPOST_AGENT_KILL_GRACE'],
    default: '10s',
    description: 'On force-cancel (or when the server lists a running job stale), how long after the interrupt the sandbox is killed (SIGKILL).',
    parse: asDurationMs,
  },
  planWorkdirTtl: {
    env: ['OUTPOST_AGENT_PLAN_WORKDIR_TTL'],
    default: '15m',
    description: 'How long the working directory of a plan with changes (the configuration, `.terraform`, the plan file) is kept for the run\'s apply. An apply this agent claims in that time starts from it, skipping the download of the configuration and `init`, if its plan file is byte for byte the one the control plane holds. At most `OUTPOST_AGENT_CONCURRENCY` (and at least 2) directories are kept. `0` turns it off.',
    parse: asDurationMs,
  },
  ...cacheSettings,
  ...kubernetesSettings,
  ...observabilitySettings,
  ...vcsSettings,
  ...shutdownSettings,
  ...memorySettings,
  maxArchiveMb: {
    env: ['OUTPOST_AGENT_MAX_ARCHIVE_MB'],
    default: '512',
    description: 'Largest size a configuration archive may expand to, in MiB; larger archives fail the run with `archive_too_large`.',
    parse: asInt(1, 102_400),
  },
} as const;

function asDockerHost(raw: string): string {
  if (!/^(unix:\/\/\/|tcp:\/\/|http:\/\/|https:\/\/)/.test(raw)) throw new Error('expected unix:///path/to/docker.sock or tcp://host:port');
  return raw;
}

function asUidGid(raw: string): { uid: number; gid: number } {
  if (raw.trim() === 'auto') {
    const uid = process.getuid?.() ?? 0;
    return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid: process.getgid?.() ?? uid };
  }
  const match = /^(\d+)(?::(\d+))?$/.exec(raw.trim());
  if (!match) throw new Error('expected numeric uid:gid such as 1000:1000');
  return { uid: Number(match[1]), gid: Number(match[2] ?? match[1]) };
}

function asCores(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > 1024) throw new Error('expected a number of cores such as 0.5 or 2');
  return value;
}

export type AgentConfig = SettingsOf<typeof agentSettings> & { name: string; url: string };

export function loadAgentConfig(env: Env = process.env): AgentConfig {
  const loaded = loadSettings(agentSettings, env, agentRules);
  const token = loaded.tokenFile === undefined ? loaded.token : readTokenFile(loaded.tokenFile);
  const url = loaded.url ?? (token ? serverUrlOfPoolToken(token) : undefined) ?? 'http://127.0.0.1:8480';
  return { ...loaded, token, name: loaded.name ?? os.hostname(), url };
}

/** Whether the control plane's URL was set (else it follows the pool token). */
export function agentUrlIsSet(env: Env = process.env): boolean {
  return agentSettings.url.env.some((name) => env[name] !== undefined && env[name] !== '');
}

function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`OUTPOST_AGENT_TOKEN_FILE=${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new ConfigError([`OUTPOST_AGENT_TOKEN_FILE=${file}: expected one pool token (opp_…), found ${token === '' ? 'an empty file' : 'several words'}`]);
  return token;
}

/**
 * The environment a job's sandbox inherits: the agent's own, minus every
 * Outpost and Scalr setting (they include the pool token, which a job must
 * never see) and every Docker client setting (DOCKER_HOST names the daemon
 * the agent controls: job code that reaches it owns the host).
 */
export function jobBaseEnvironment(env: Env = process.env): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || /^(OUTPOST|SCALR|DOCKER)_/.test(key)) continue;
    base[key] = value;
  }
  return base;
}
