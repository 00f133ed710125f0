// The control plane's settings, read once from the environment by `outpost server`.
import path from 'node:path';
import {
  asBool,
  asDurationMs,
  asDurationWithin,
  asEnum,
  asInt,
  asString,
  asUrl,
  formatDuration,
  loadSettings,
  type Env,
  type SettingsOf,
  type SettingsRule,
} from '../config/settings.ts';

export const serverSettings = {
  dataDir: {
    env: ['OUTPOST_DATA_DIR'],
    default: '.outpost/server',
    description: 'Directory for the embedded SQLite database and the blob store (configuration versions, plans, state).',
    parse: (raw: string) => path.resolve(raw),
  },
  databaseUrl: {
    env: ['OUTPOST_DATABASE_URL'],
    description: 'PostgreSQL connection URL (`postgres://user:pass@host/db`). Unset: embedded SQLite in the data dir.',
    parse: asString,
    secret: true,
  },
  listen: {
    env: ['OUTPOST_LISTEN'],
    default: '127.0.0.1:8480',
    description: 'Address and port the HTTP API listens on (`host:port`; port 0 picks a free one).',
    parse: parseListen,
  },
  publicUrl: {
    env: ['OUTPOST_PUBLIC_URL'],
    description: 'URL agents, jobs and the `tofu` CLI use to reach this server, as they see it: behind a reverse proxy, the proxy\'s `https://` URL. Pre-signed URLs and links in API responses are made from it. Default: derived from OUTPOST_LISTEN (`https://` with OUTPOST_TLS_CERT).',
    parse: asUrl,
  },
  tlsCert: {
    env: ['OUTPOST_TLS_CERT'],
    description: 'PEM file with the certificate chain to serve HTTPS with (needs OUTPOST_TLS_KEY). Unset: plain HTTP, for a reverse proxy that terminates TLS. Replaced files are picked up without a restart.',
    parse: (raw: string) => path.resolve(raw),
  },
  tlsKey: {
    env: ['OUTPOST_TLS_KEY'],
    description: 'PEM file with the private key of OUTPOST_TLS_CERT.',
    parse: (raw: string) => path.resolve(raw),
  },
  tlsReloadInterval: {
    env: ['OUTPOST_TLS_RELOAD_INTERVAL'],
    default: '30s',
    description: 'How often the TLS certificate and key files are checked for a change (cert-manager, a Kubernetes Secret or certbot replacing them); a pair that does not load is logged and the previous one kept.',
    parse: asDurationWithin(1_000, 3_600_000),
  },
  signedUrlTtl: {
    env: ['OUTPOST_SIGNED_URL_TTL'],
    default: '10m',
    description: 'How long a pre-signed URL (configuration upload, plan and apply log, state download: what TFE clients follow without a token) stays valid. A log URL also stays valid while its phase runs.',
    parse: asDurationWithin(10_000, 86_400_000),
  },
  bootstrapToken: {
    env: ['OUTPOST_BOOTSTRAP_TOKEN'],
    description: 'On first start, use this value as the admin token instead of generating one (automation, compose). Must start with `opa_` and be at least 36 characters.',
    parse: (raw: string) => {
      if (!/^opa_[A-Za-z0-9_-]{32,}$/.test(raw)) throw new Error('expected opa_ followed by at least 32 letters, digits, - or _');
      return raw;
    },
    secret: true,
  },
  encryptionKey: {
    env: ['OUTPOST_ENCRYPTION_KEY'],
    description: 'Key that seals sensitive variable values at rest: 32 bytes, base64 (`openssl rand -base64 32`). Unset: generated on first start into `<data dir>/encryption.key`. Replicas sharing a database must share this key.',
    parse: (raw: string) => {
      const key = Buffer.from(raw.trim(), 'base64');
      if (key.length !== 32) throw new Error('expected 32 bytes, base64-encoded');
      return key;
    },
    secret: true,
  },
  logFormat: {
    env: ['OUTPOST_LOG_FORMAT'],
    default: 'auto',
    description: '`json` (one object a line), `text` (readable), or `auto` (text on a terminal, JSON otherwise).',
    parse: asEnum(['auto', 'json', 'text'] as const),
  },
  logLevel: {
    env: ['OUTPOST_LOG_LEVEL'],
    default: 'info',
    description: 'Minimum log level: `debug`, `info`, `warn`, `error`.',
    parse: asEnum(['debug', 'info', 'warn', 'error'] as const),
  },
  metricsEnabled: {
    env: ['OUTPOST_METRICS_ENABLED'],
    default: 'true',
    description: 'Serve Prometheus metrics at `/metrics` on the API port, without authentication (like `/healthz`). `false`: `/metrics` answers 404.',
    parse: asBool,
  },
  maxUploadMb: {
    env: ['OUTPOST_MAX_UPLOAD_MB'],
    default: '100',
    description: 'Largest configuration-version or plan upload accepted, in MiB; larger bodies get 413 `payload_too_large`.',
    parse: asInt(1, 10_240),
  },
  maxStateMb: {
    env: ['OUTPOST_MAX_STATE_MB'],
    default: '256',
    description: 'Largest state file accepted through the HTTP state backend, in MiB.',
    parse: asInt(1, 10_240),
  },
  maxLogMb: {
    env: ['OUTPOST_MAX_LOG_MB'],
    default: '512',
    description: 'Largest log of one plan or apply, in MiB; the agent stops shipping a log that reaches it (413 `log_too_large`), the job itself goes on.',
    parse: asInt(1, 102_400),
  },
  heartbeatInterval: {
    env: ['OUTPOST_AGENT_HEARTBEAT_INTERVAL'],
    default: '10s',
    description: 'How often agents are told to heartbeat.',
    parse: asDurationMs,
  },
  leaseTimeout: {
    env: ['OUTPOST_LEASE_TIMEOUT'],
    default: '30s',
    description: 'A job whose agent has not heartbeated for this long loses its lease; an agent silent this long is `offline`.',
    parse: asDurationMs,
  },
  pollTimeout: {
    env: ['OUTPOST_POLL_TIMEOUT'],
    default: '25s',
    description: 'How long a claim long-poll is held open when there is no work (at most 60s: agents count a connection silent for 120s as lost, and proxies and load balancers often close idle ones after 60s).',
    parse: asDurationWithin(1_000, 60_000),
  },
  sweepInterval: {
    env: ['OUTPOST_SWEEP_INTERVAL'],
    default: '5s',
    description: 'How often expired leases and silent agents are looked for.',
    parse: asDurationMs,
  },
  webhookTimeout: {
    env: ['OUTPOST_WEBHOOK_TIMEOUT'],
    default: '10s',
    description: 'How long a pool webhook\'s receiver has to answer a delivery before the attempt counts as failed and is retried.',
    parse: asDurationWithin(1_000, 60_000),
  },
  webhookInterval: {
    env: ['OUTPOST_WEBHOOK_INTERVAL'],
    default: '2s',
    description: 'How often serverless pools are checked for waiting jobs and deliveries due for a retry (a queued job is also looked at the moment it is queued).',
    parse: asDurationWithin(100, 60_000),
  },
  webhookRetryMaxInterval: {
    env: ['OUTPOST_WEBHOOK_RETRY_MAX_INTERVAL'],
    default: '5m',
    description: 'Longest wait between two attempts of a failed delivery; the wait doubles from 5 s up to this while the job still waits.',
    parse: asDurationWithin(5_000, 3_600_000),
  },
  vcsInterval: {
    env: ['OUTPOST_VCS_INTERVAL'],
    default: '2s',
    description: 'How often version control work is looked at: polls that are due, commit statuses to post after runs change, and provider work to retry (new work is also looked at the moment it arrives).',
    parse: asDurationWithin(100, 60_000),
  },
  vcsWebhookMaxKb: {
    env: ['OUTPOST_VCS_WEBHOOK_MAX_KB'],
    default: '5120',
    description: 'Largest webhook body a version control provider may send, in KiB; larger ones get 413 `payload_too_large`.',
    parse: asInt(16, 102_400),
  },
  planAttempts: {
    env: ['OUTPOST_PLAN_MAX_ATTEMPTS'],
    default: '3',
    description: 'How many times a plan whose agent was lost is queued again before the run errors.',
    parse: asInt(1, 20),
  },
  defaultEngineVersion: {
    env: ['OUTPOST_DEFAULT_ENGINE_VERSION'],
    default: '1.10.10',
    description: 'Engine version given to new workspaces that do not name one.',
    parse: asString,
  },
} as const;

export type ServerConfig = SettingsOf<typeof serverSettings>;

/** How many heartbeats an agent may miss before its jobs lose their leases. */
const heartbeatsPerLease = 3;

export const serverRules: readonly SettingsRule<ServerConfig>[] = [
  {
    settings: ['OUTPOST_LEASE_TIMEOUT', 'OUTPOST_AGENT_HEARTBEAT_INTERVAL'],
    description: `the lease timeout must be at least ${heartbeatsPerLease} heartbeat intervals, so a healthy agent that misses a heartbeat or two (a slow network, a server restart) keeps its jobs.`,
    check: ({ leaseTimeout, heartbeatInterval }) =>
      leaseTimeout >= heartbeatsPerLease * heartbeatInterval
        ? undefined
        : `OUTPOST_LEASE_TIMEOUT=${formatDuration(leaseTimeout)} is shorter than ${heartbeatsPerLease} × OUTPOST_AGENT_HEARTBEAT_INTERVAL=${formatDuration(heartbeatInterval)}: a healthy agent's jobs would lose their leases between heartbeats and be cancelled mid-run. Set OUTPOST_LEASE_TIMEOUT to at least ${formatDuration(heartbeatsPerLease * heartbeatInterval)}, or shorten the heartbeat interval.`,
  },
  {
    settings: ['OUTPOST_SWEEP_INTERVAL', 'OUTPOST_LEASE_TIMEOUT'],
    description: 'the sweep interval must be shorter than the lease timeout, or an expired lease (a lost agent\'s plan waiting to be queued again) waits more than twice its timeout.',
    check: ({ sweepInterval, leaseTimeout }) =>
      sweepInterval < leaseTimeout
        ? undefined
        : `OUTPOST_SWEEP_INTERVAL=${formatDuration(sweepInterval)} is not shorter than OUTPOST_LEASE_TIMEOUT=${formatDuration(leaseTimeout)}: expired leases and silent agents would be noticed only long after they expire. Sweep more often than the lease timeout.`,
  },
  {
    settings: ['OUTPOST_TLS_CERT', 'OUTPOST_TLS_KEY'],
    description: 'TLS needs both the certificate and its key.',
    check: ({ tlsCert, tlsKey }) =>
      (tlsCert === undefined) === (tlsKey === undefined)
        ? undefined
        : `${tlsCert === undefined ? 'OUTPOST_TLS_KEY' : 'OUTPOST_TLS_CERT'} is set without ${tlsCert === undefined ? 'OUTPOST_TLS_CERT' : 'OUTPOST_TLS_KEY'}: set both to serve HTTPS, or neither for plain HTTP.`,
  },
];

export function loadServerConfig(env: Env = process.env): ServerConfig {
  return loadSettings(serverSettings, env, serverRules);
}

function parseListen(raw: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(raw.trim());
  if (!match) throw new Error('expected host:port, for example 0.0.0.0:8480');
  const port = Number(match[2]);
  if (port > 65_535) throw new Error('port must be at most 65535');
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}
