// The job operation's settings, read once from the environment the agent's
// driver starts `outpost job` with. This is the only module of the operation
// that reads process.env: everything else receives values from here, which
// keeps the operation testable and makes the contract with the driver explicit.
import path from 'node:path';
import { ConfigError, asInt, asUrl, loadSettings, type Env, type SettingsOf } from '../config/settings.ts';

function asAbsolutePath(raw: string): string {
  if (!path.isAbsolute(raw)) throw new Error('expected an absolute path');
  return path.normalize(raw);
}

/** Keeps the trailing slash: the mirror's job key is the last path segment. */
function asHttpsUrl(raw: string): string {
  if (new URL(raw).protocol !== 'https:') throw new Error('expected an https URL');
  return raw;
}

export const jobSettings = {
  serverUrl: {
    env: ['OUTPOST_JOB_SERVER_URL'],
    description: 'Base URL of the control plane, as the job reaches it (set by the agent).',
    parse: asUrl,
  },
  token: {
    env: ['OUTPOST_JOB_TOKEN'],
    description: 'Job token authenticating the operation and the engine\'s state backend (set by the agent).',
    parse: (raw: string) => raw.trim(),
    secret: true,
  },
  workdir: {
    env: ['OUTPOST_JOB_WORKDIR'],
    description: 'Absolute path of the empty per-job directory (set by the agent).',
    parse: asAbsolutePath,
  },
  enginePath: {
    env: ['OUTPOST_JOB_ENGINE_PATH'],
    description: 'Absolute path of the `tofu` or `terraform` binary prepared by the agent.',
    parse: asAbsolutePath,
  },
  maxArchiveMb: {
    env: ['OUTPOST_JOB_MAX_ARCHIVE_MB'],
    default: '512',
    description: 'Largest size the configuration archive may expand to, in MiB; larger archives fail the job with `archive_too_large`.',
    parse: asInt(1, 102_400),
  },
  providerMirrorUrl: {
    env: ['OUTPOST_JOB_PROVIDER_MIRROR_URL'],
    description: 'The agent\'s provider mirror for this job (`https://127.0.0.1:<port>/<job key>/`); absent when the agent\'s provider cache is off (set by the agent).',
    parse: asHttpsUrl,
    secret: true,
  },
  providerMirrorCa: {
    env: ['OUTPOST_JOB_PROVIDER_MIRROR_CA'],
    description: 'PEM of the CA of the agent\'s provider mirror, which the engine is made to trust (set by the agent).',
    parse: (raw: string) => raw.trim(),
  },
  providerMirrorTimeoutSeconds: {
    env: ['OUTPOST_JOB_PROVIDER_MIRROR_TIMEOUT'],
    default: '360',
    description: 'How long the engine waits for an answer of the provider mirror, which may be downloading the package, in seconds (set by the agent).',
    parse: asInt(10, 86_400),
  },
  providerRegistryServices: {
    env: ['OUTPOST_JOB_PROVIDER_REGISTRY_SERVICES'],
    description: 'JSON object of registry host name to providers.v1 URL, written as `host` blocks into the engine\'s CLI configuration when there is no provider mirror (set by the agent).',
    parse: (raw: string) => JSON.parse(raw) as Record<string, string>,
  },
  // The usual proxy variables, so the operation reaches the control plane the
  // same way the engine (which inherits them) reaches it for state.
  httpsProxy: {
    env: ['HTTPS_PROXY', 'https_proxy'],
    description: 'Proxy for https:// control plane URLs.',
    parse: asUrl,
  },
  httpProxy: {
    env: ['HTTP_PROXY', 'http_proxy'],
    description: 'Proxy for http:// control plane URLs.',
    parse: asUrl,
  },
  noProxy: {
    env: ['NO_PROXY', 'no_proxy'],
    description: 'Hosts reached without the proxy (comma-separated).',
    parse: (raw: string) => raw.trim(),
  },
} as const;

/** The agent always sets these; without one the job cannot even report its failure. */
const requiredSettings = ['serverUrl', 'token', 'workdir', 'enginePath'] as const;

type LoadedSettings = SettingsOf<typeof jobSettings>;
type RequiredSetting = (typeof requiredSettings)[number];

export type JobConfig = Omit<LoadedSettings, RequiredSetting> & { [K in RequiredSetting]: NonNullable<LoadedSettings[K]> };

export function loadJobConfig(env: Env = process.env): JobConfig {
  const loaded = loadSettings(jobSettings, env);
  const missing = requiredSettings.filter((key) => loaded[key] === undefined).map((key) => `${jobSettings[key].env[0]} is required`);
  if (missing.length > 0) throw new ConfigError(missing);
  return loaded as JobConfig;
}

/**
 * The environment the operation was started with. The engine inherits it
 * (minus Outpost's own variables), so it is handed over as a copy.
 */
export function inheritedEnvironment(env: Env = process.env): Env {
  return { ...env };
}
