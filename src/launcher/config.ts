// `outpost launcher`'s settings, read once from the environment.
import { readFileSync } from 'node:fs';
import { asEnum, asInt, asString, loadSettings, type Env, type SettingsOf, type SettingsRule } from '../config/settings.ts';

function asListen(raw: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(raw.trim());
  if (!match || Number(match[2]) > 65_535) throw new Error('expected host:port, for example 0.0.0.0:8490');
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(match[2]) };
}

function asEnvObject(raw: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('expected a JSON object of variable names to values, for example {"HTTPS_PROXY":"http://proxy:3128"}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((value) => typeof value === 'string')) {
    throw new Error('expected a JSON object whose values are strings');
  }
  return parsed as Record<string, string>;
}

function asList(raw: string): string[] {
  return raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function asMemory(raw: string): number {
  const match = /^(\d+)(m|mi|g|gi)$/i.exec(raw.trim());
  if (!match) throw new Error('expected a size such as 512m or 4g');
  return Number(match[1]) * (match[2]!.toLowerCase().startsWith('g') ? 1024 : 1) * 1024 * 1024;
}

function asCpus(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > 256) throw new Error('expected a number of CPUs, such as 2 or 0.5');
  return value;
}

export const launcherSettings = {
  listen: {
    env: ['OUTPOST_LAUNCHER_LISTEN'],
    default: '127.0.0.1:8490',
    description: 'Address and port the launcher receives the pool\'s webhook deliveries on (`host:port`): point the pool\'s webhook at `http://<this address>/webhook`, through TLS termination if it crosses a network you do not trust.',
    parse: asListen,
  },
  signingSecret: {
    env: ['OUTPOST_LAUNCHER_SIGNING_SECRET'],
    description: 'The pool webhook\'s signing secret (opw_…), as `outpost pool webhook set` or `rotate-secret` printed it. This or OUTPOST_LAUNCHER_SIGNING_SECRET_FILE is required.',
    parse: asString,
    secret: true,
  },
  signingSecretFile: {
    env: ['OUTPOST_LAUNCHER_SIGNING_SECRET_FILE'],
    description: 'A file holding the signing secret (a mounted Kubernetes or Docker secret). Read again on every delivery, so a rotated secret is picked up without a restart; a second line holds the previous secret during a rotation.',
    parse: asString,
  },
  target: {
    env: ['OUTPOST_LAUNCHER_TARGET'],
    default: 'docker',
    description: 'Where each job\'s agent starts: `docker` (a container on this host\'s Docker Engine, DOCKER_HOST or its socket) or `kubernetes` (a Job in OUTPOST_LAUNCHER_NAMESPACE, in-cluster or with KUBECONFIG).',
    parse: asEnum(['docker', 'kubernetes'] as const),
  },
  agentToken: {
    env: ['OUTPOST_AGENT_TOKEN'],
    description: 'With the docker target: the pool token each started agent registers with (or an AWS Secrets Manager ARN of it). With the kubernetes target use OUTPOST_LAUNCHER_TOKEN_SECRET instead, so the token never passes through the launcher.',
    parse: asString,
    secret: true,
  },
  agentTokenFile: {
    env: ['OUTPOST_AGENT_TOKEN_FILE'],
    description: 'A file holding the pool token, instead of OUTPOST_AGENT_TOKEN.',
    parse: asString,
  },
  tokenSecret: {
    env: ['OUTPOST_LAUNCHER_TOKEN_SECRET'],
    description: 'With the kubernetes target: the Secret holding the pool token, as `name` or `name:key` (key default `token`); Jobs read it through `secretKeyRef`.',
    parse: asString,
  },
  image: {
    env: ['OUTPOST_LAUNCHER_IMAGE'],
    default: 'outpost/agent-runner:latest',
    description: 'The image of the single-run agents.',
    parse: asString,
  },
  maxAgents: {
    env: ['OUTPOST_LAUNCHER_MAX_AGENTS'],
    default: '4',
    description: 'At most this many agents started by this launcher run at once; a delivery beyond it is answered 503 `launcher_at_capacity` and the control plane retries it with backoff.',
    parse: asInt(1, 1_000),
  },
  cpus: {
    env: ['OUTPOST_LAUNCHER_CPUS'],
    default: '2',
    description: 'CPUs each agent may use (a Docker CPU quota, a Kubernetes limit).',
    parse: asCpus,
  },
  memory: {
    env: ['OUTPOST_LAUNCHER_MEMORY'],
    default: '4g',
    description: 'Memory each agent may use (`512m`, `4g`); the agent\'s memory guard keeps its job under it.',
    parse: asMemory,
  },
  network: {
    env: ['OUTPOST_LAUNCHER_DOCKER_NETWORK'],
    description: 'With the docker target: the network the agent containers join. Default: Docker\'s default bridge.',
    parse: asString,
  },
  volumes: {
    env: ['OUTPOST_LAUNCHER_DOCKER_VOLUMES'],
    description: 'With the docker target: mounts for every agent container, comma-separated `source:target[:ro]` (a shared provider cache, an engine binary).',
    parse: asList,
  },
  namespace: {
    env: ['OUTPOST_LAUNCHER_NAMESPACE'],
    default: 'default',
    description: 'With the kubernetes target: the namespace of the Jobs.',
    parse: asString,
  },
  podTemplate: {
    env: ['OUTPOST_LAUNCHER_POD_TEMPLATE'],
    description: 'With the kubernetes target: a YAML or JSON file with a pod spec merged into every agent\'s Job: `serviceAccountName` (cloud credentials through workload identity), `nodeSelector`, `tolerations`, `volumes`, and for the first container `env`, `volumeMounts` and `resources`.',
    parse: asString,
  },
  agentEnv: {
    env: ['OUTPOST_LAUNCHER_AGENT_ENV'],
    description: 'More environment for every agent, as a JSON object (`{"HTTPS_PROXY":"http://proxy:3128","OUTPOST_AGENT_LOG_LEVEL":"debug"}`).',
    parse: asEnvObject,
  },
  allowedPools: {
    env: ['OUTPOST_LAUNCHER_ALLOWED_POOLS'],
    description: 'Comma-separated pool ids (apool-…) whose deliveries are served; others are refused with 403. Default: any pool whose deliveries verify with the secret.',
    parse: asList,
  },
  logFormat: {
    env: ['OUTPOST_LAUNCHER_LOG_FORMAT'],
    default: 'auto',
    description: '`json`, `text`, or `auto` (text on a terminal, JSON otherwise).',
    parse: asEnum(['auto', 'json', 'text'] as const),
  },
} as const;

export type LauncherConfig = SettingsOf<typeof launcherSettings>;

export const launcherRules: readonly SettingsRule<LauncherConfig>[] = [
  {
    settings: ['OUTPOST_LAUNCHER_SIGNING_SECRET', 'OUTPOST_LAUNCHER_SIGNING_SECRET_FILE'],
    description: 'one of the two is required: the launcher refuses every delivery it cannot verify.',
    check: ({ signingSecret, signingSecretFile }) =>
      signingSecret || signingSecretFile ? undefined : 'OUTPOST_LAUNCHER_SIGNING_SECRET or OUTPOST_LAUNCHER_SIGNING_SECRET_FILE is required: the secret `outpost pool webhook set` printed',
  },
  {
    settings: ['OUTPOST_LAUNCHER_TARGET', 'OUTPOST_AGENT_TOKEN', 'OUTPOST_AGENT_TOKEN_FILE'],
    description: 'the docker target needs the pool token (or its file) to give the agents it starts.',
    check: ({ target, agentToken, agentTokenFile }) =>
      target !== 'docker' || agentToken || agentTokenFile ? undefined : 'with OUTPOST_LAUNCHER_TARGET=docker, OUTPOST_AGENT_TOKEN or OUTPOST_AGENT_TOKEN_FILE is required: the pool token the agents register with',
  },
  {
    settings: ['OUTPOST_LAUNCHER_TARGET', 'OUTPOST_LAUNCHER_TOKEN_SECRET'],
    description: 'the kubernetes target needs the Secret holding the pool token.',
    check: ({ target, tokenSecret }) =>
      target !== 'kubernetes' || tokenSecret ? undefined : 'with OUTPOST_LAUNCHER_TARGET=kubernetes, OUTPOST_LAUNCHER_TOKEN_SECRET is required: the Secret holding the pool token',
  },
];

export function loadLauncherConfig(env: Env = process.env): LauncherConfig {
  return loadSettings(launcherSettings, env, launcherRules);
}

/** The secrets deliveries may be signed with: the configured one, or the file's lines (current, then previous). */
export function readSigningSecrets(config: LauncherConfig): string[] {
  if (config.signingSecret) return [config.signingSecret];
  return readFileSync(config.signingSecretFile!, 'utf8').split('\n').map((line) => line.trim()).filter((line) => line !== '');
}

/** The pool token for docker agents, from the variable or its file. */
export function agentTokenOf(config: LauncherConfig): string {
  return config.agentToken ?? readFileSync(config.agentTokenFile!, 'utf8').trim();
}
