// The agent's settings, read once from the environment by `outpost agent run`.
// The seed's SCALR_* names are accepted as aliases so its recipes work as written.
import os from 'node:os';
import path from 'node:path';
import { asBool, asDurationMs, asEnum, asInt, asString, asUrl, loadSettings, type Env, type SettingsOf } from '../config/settings.ts';

export const agentSettings = {
  url: {
    env: ['OUTPOST_URL', 'SCALR_URL'],
    default: 'http://127.0.0.1:8480',
    description: 'URL of the Outpost control plane.',
    parse: asUrl,
  },
  token: {
    env: ['OUTPOST_AGENT_TOKEN', 'SCALR_AGENT_TOKEN', 'SCALR_TOKEN'],
    description: 'Pool token the agent registers with (required). Shown once when the token is created.',
    parse: (raw: string) => raw.trim(),
    secret: true,
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
    default: 'local',
    description: 'Where jobs run: `local` (a subprocess per job).',
    parse: asEnum(['local'] as const),
  },
  concurrency: {
    env: ['OUTPOST_AGENT_CONCURRENCY', 'SCALR_AGENT_CONCURRENCY'],
    default: '1',
    description: 'How many jobs this agent runs at once.',
    parse: asInt(1, 256),
  },
  single: {
    env: ['OUTPOST_AGENT_SINGLE', 'SCALR_AGENT_SINGLE', 'SCALR_SINGLE'],
    default: 'false',
    description: 'Single mode: claim one job, run it, exit (0 if the job ran, non-zero if it could not). For serverless tasks.',
    parse: asBool,
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
  binaryMirror: {
    env: ['OUTPOST_AGENT_BINARY_MIRROR'],
    description: 'Base URL of a mirror of the engines\' release files, used instead of the official sites. Layout: `<mirror>/<engine>/<version>/<official file name>`.',
    parse: asUrl,
  },
  enginePath: {
    env: ['OUTPOST_AGENT_ENGINE_PATH'],
    description: 'A local engine binary (or a directory holding `tofu`/`terraform`) used when the requested version cannot be downloaded, if its version matches.',
    parse: (raw: string) => path.resolve(raw),
  },
  downloadTimeout: {
    env: ['OUTPOST_AGENT_DOWNLOAD_TIMEOUT'],
    default: '5m',
    description: 'Longest time an engine download may take before it is abandoned.',
    parse: asDurationMs,
  },
  killGrace: {
    env: ['OUTPOST_AGENT_KILL_GRACE'],
    default: '10s',
    description: 'On force-cancel, how long after the interrupt the engine is killed (SIGKILL).',
    parse: asDurationMs,
  },
  maxArchiveMb: {
    env: ['OUTPOST_AGENT_MAX_ARCHIVE_MB'],
    default: '512',
    description: 'Largest size a configuration archive may expand to, in MiB; larger archives fail the run with `archive_too_large`.',
    parse: asInt(1, 102_400),
  },
} as const;

export type AgentConfig = SettingsOf<typeof agentSettings> & { name: string };

export function loadAgentConfig(env: Env = process.env): AgentConfig {
  const loaded = loadSettings(agentSettings, env);
  return { ...loaded, name: loaded.name ?? os.hostname() };
}

/**
 * The environment a job's sandbox inherits: the agent's own, minus every
 * Outpost and Scalr setting (they include the pool token, which a job must
 * never see).
 */
export function jobBaseEnvironment(env: Env = process.env): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || /^(OUTPOST|SCALR)_/.test(key)) continue;
    base[key] = value;
  }
  return base;
}
