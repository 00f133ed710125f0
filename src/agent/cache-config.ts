// The agent's cache settings (provider cache, network mirrors, the CA bundle
// for them), part of the agent's settings table (config.ts). The Scalr
// agent's SCALR_AGENT_* names are aliases.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { asBool, asDurationMs, asInt, type Env } from '../config/settings.ts';

const networkMirrorsSchema = z.array(
  z.strictObject({
    url: z.url({ protocol: /^https$/, error: 'a mirror URL must be an https:// URL' }),
    token: z.string().min(1).optional(),
    include: z.array(z.string().regex(/^[^/\s]+\/[^/\s]+\/[^/\s]+$/, 'an include pattern is hostname/namespace/type, each part a name or *')).optional(),
  }),
);

export type NetworkMirrorSetting = z.infer<typeof networkMirrorsSchema>[number];

function asNetworkMirrors(raw: string): NetworkMirrorSetting[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('expected a JSON list such as [{"url":"https://mirror.example.com/providers/","include":["registry.opentofu.org/hashicorp/*"]}]');
  }
  const result = networkMirrorsSchema.safeParse(parsed);
  if (!result.success) throw new Error(result.error.issues.map((issue) => `${issue.path.join('.') || 'list'}: ${issue.message}`).join('; '));
  return result.data;
}

function asRegistryServices(raw: string): Record<string, string> {
  const result = z.record(z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, 'a lower-case host name'), z.url({ protocol: /^https?$/ })).safeParse(JSON.parse(raw));
  if (!result.success) throw new Error('expected a JSON object of host name to providers.v1 base URL, such as {"registry.example.com":"https://registry.example.com/v1/providers/"}');
  return result.data;
}

/** A PEM file, or the PEM itself, or the PEM in base64 (as the Scalr agent accepts). */
function asCaBundle(raw: string): string {
  const text = raw.trim();
  const pem = text.startsWith('-----BEGIN') ? text
    : path.isAbsolute(text) ? readFileSync(text, 'utf8')
    : Buffer.from(text, 'base64').toString('utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('expected PEM certificates, a path to a PEM file, or base64 of PEM certificates');
  return pem;
}

export const cacheSettings = {
  cacheDir: {
    env: ['OUTPOST_AGENT_CACHE_DIR', 'SCALR_AGENT_CACHE_DIR'],
    description: 'Directory of the engine binary cache (`binaries/`) and the provider cache (`providers/`). Default: `cache/` in the data dir. Several agents on one host may share it.',
    parse: (raw: string) => path.resolve(raw),
  },
  providerCacheEnabled: {
    env: ['OUTPOST_AGENT_PROVIDER_CACHE_ENABLED', 'SCALR_AGENT_PROVIDER_CACHE_ENABLED'],
    default: 'true',
    description: 'Serve providers to jobs from the agent\'s provider cache (a network mirror on 127.0.0.1 that fills itself from the network mirrors below, then the origin registry). `false`: each job\'s engine downloads its providers itself.',
    parse: asBool,
  },
  providerCacheSizeLimitMb: {
    env: ['OUTPOST_AGENT_PROVIDER_CACHE_SIZE_LIMIT_MB', 'SCALR_AGENT_PROVIDER_CACHE_SIZE_LIMIT_MB'],
    default: '10240',
    description: 'Size the provider cache is kept under, in MiB (`0`: no limit). Least recently used packages are removed first; a package a running job uses is never removed.',
    parse: asInt(0, 10_485_760),
  },
  providerCacheVersionsTtl: {
    env: ['OUTPOST_AGENT_PROVIDER_CACHE_VERSIONS_TTL'],
    default: '10m',
    description: 'How long a provider\'s version list, once fetched, answers without asking upstream again. A new release becomes visible to version constraints after at most this long; a locked version never waits. When upstream fails, the last list is used however old.',
    parse: asDurationMs,
  },
  providerNetworkMirrors: {
    env: ['OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS', 'SCALR_AGENT_PROVIDER_NETWORK_MIRRORS'],
    description: 'Provider network mirrors the cache fills itself from, tried in order before the origin registry: a JSON list of `{"url": "https://…/", "token": "…" (optional, sent as a bearer token), "include": ["hostname/namespace/type", …] (optional, `*` matches any part)}`. A mirror that answers 404, fails, or serves a package that does not match its checksum is skipped.',
    parse: asNetworkMirrors,
    secret: true,
  },
  providerRegistryServices: {
    env: ['OUTPOST_AGENT_PROVIDER_REGISTRY_SERVICES'],
    description: 'Provider registry base URLs by host name, used instead of service discovery (as a `host` block in the engines\' CLI configuration): a JSON object such as `{"registry.example.com": "https://registry.example.com/v1/providers/"}`. Applies to the engine too when the provider cache is off.',
    parse: asRegistryServices,
  },
  caCert: {
    env: ['OUTPOST_AGENT_CA_CERT', 'SCALR_AGENT_CA_CERT'],
    description: 'Extra CA certificates the agent trusts for provider mirrors and registries: a PEM file path, PEM text, or base64 of PEM. Added to the public CAs (unlike the Scalr agent, it need not repeat them).',
    parse: asCaBundle,
  },
  providerMirrorPort: {
    env: ['OUTPOST_AGENT_PROVIDER_MIRROR_PORT'],
    default: '0',
    description: 'Loopback port of the agent\'s provider mirror (`0`: any free port).',
    parse: asInt(0, 65_535),
  },
} as const;

/**
 * Registry API tokens from the engines' own convention, TF_TOKEN_<host> with
 * dots as `_` and dashes as `__` (TF_TOKEN_app_terraform_io), so the cache
 * can fetch from the private registries the engine could.
 */
export function registryCredentials(env: Env = process.env): Record<string, string> {
  const credentials: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const match = /^TF_TOKEN_(.+)$/.exec(name);
    if (!match || !value) continue;
    const host = match[1]!.replace(/__/g, '\0').replace(/_/g, '.').replace(/\0/g, '-').toLowerCase();
    credentials[host] = value;
  }
  return credentials;
}
