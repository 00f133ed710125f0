// Where the provider cache fills itself from, tried in order: the configured
// network mirrors (the engines' network mirror protocol), then the provider's
// origin registry (the provider registry protocol, with the release's
// SHA256SUMS and its OpenPGP signature checked as the engines check them).
// A source answers "not found" (the next is tried quietly) or fails with a
// reason that is safe to show in a run log (the next is tried, and the
// reason is reported).
import { DownloadFailed, fetchBytes, fetchText, type DownloadContext, type UpstreamDispatcher } from '../engines/release-download.ts';
import { redactUrl } from '../engines/release-files.ts';
import { verifyDetachedSignature, type SigningKey } from './package-signature.ts';
import { matchesPattern, packageName, providerName, type PackageKey, type ProviderAddress } from './provider-address.ts';

export interface UpstreamPackage {
  url: string;
  /** Headers the download needs (a mirror's credentials, only for the mirror's own origin). */
  headers: Readonly<Record<string, string>>;
  /** `zh:`/`h1:` hashes the package must match; empty only for a mirror that publishes none. */
  expected: string[];
  /** For the log: which source, and whether a publisher's signature vouches for the hashes. */
  origin: string;
  signed: boolean;
}

export interface ProviderSource {
  /** For logs and run logs, without credentials. */
  readonly name: string;
  matches(address: ProviderAddress): boolean;
  versions(address: ProviderAddress): Promise<string[] | 'not_found'>;
  package(key: PackageKey): Promise<UpstreamPackage | 'not_found'>;
}

/** A source could not answer; `message` is safe for a run log. */
export class SourceFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceFailed';
  }
}

export interface UpstreamHttp {
  dispatcher: UpstreamDispatcher;
  /** Longest time one metadata request may take. */
  requestTimeoutMs: number;
}

export interface NetworkMirrorConfig {
  url: string;
  token?: string | undefined;
  include?: readonly string[] | undefined;
}

export class NetworkMirrorSource implements ProviderSource {
  readonly name: string;
  readonly #base: URL;
  readonly #config: NetworkMirrorConfig;
  readonly #http: UpstreamHttp;

  constructor(config: NetworkMirrorConfig, http: UpstreamHttp) {
    this.#base = new URL(config.url.endsWith('/') ? config.url : `${config.url}/`);
    this.#config = config;
    this.#http = http;
    this.name = `network mirror ${redactUrl(this.#base.toString())}`;
  }

  matches(address: ProviderAddress): boolean {
    const include = this.#config.include;
    return include === undefined || include.length === 0 || include.some((pattern) => matchesPattern(pattern, address));
  }

  async versions(address: ProviderAddress): Promise<string[] | 'not_found'> {
    const body = await this.#json(new URL(`${providerName(address)}/index.json`, this.#base));
    if (body === 'not_found') return body;
    const versions = (body as { versions?: unknown }).versions;
    if (typeof versions !== 'object' || versions === null) throw new SourceFailed(`${this.name}: index.json has no "versions" object`);
    return Object.keys(versions);
  }

  async package(key: PackageKey): Promise<UpstreamPackage | 'not_found'> {
    const documentUrl = new URL(`${providerName(key)}/${key.version}.json`, this.#base);
    const body = await this.#json(documentUrl);
    if (body === 'not_found') return body;
    const archive = (body as { archives?: Record<string, { url?: unknown; hashes?: unknown }> }).archives?.[key.platform];
    if (archive === undefined) return 'not_found';
    if (typeof archive.url !== 'string') throw new SourceFailed(`${this.name}: the archive of ${key.platform} has no URL`);
    const url = new URL(archive.url, documentUrl);
    const hashes = Array.isArray(archive.hashes) ? archive.hashes.filter((hash): hash is string => typeof hash === 'string' && /^(zh|h1):/.test(hash)) : [];
    const sameOrigin = url.origin === this.#base.origin;
    return { url: url.toString(), headers: sameOrigin ? this.#headers() : {}, expected: hashes, origin: this.name, signed: false };
  }

  async #json(url: URL): Promise<unknown> {
    return fetchJson(url.toString(), { ...requestContext(this.#http), headers: this.#headers() }, this.name);
  }

  #headers(): Record<string, string> {
    return this.#config.token ? { authorization: `Bearer ${this.#config.token}` } : {};
  }
}

export interface OriginRegistryConfig {
  /** Hostname → providers.v1 base URL, used instead of service discovery (as the engines' `host` blocks). */
  services: Readonly<Record<string, string>>;
  /** Hostname → API token (TF_TOKEN_<host>), sent to that registry's API only. */
  credentials: Readonly<Record<string, string>>;
}

interface DownloadDocument {
  filename?: unknown;
  download_url?: unknown;
  shasum?: unknown;
  shasums_url?: unknown;
  shasums_signature_url?: unknown;
  signing_keys?: { gpg_public_keys?: SigningKey[] };
}

const discoveryTtlMs = 10 * 60_000;
const unsignedRegistry = 'registry.opentofu.org';

export class OriginRegistrySource implements ProviderSource {
  readonly name = 'origin registry';
  readonly #config: OriginRegistryConfig;
  readonly #http: UpstreamHttp;
  readonly #discovered = new Map<string, { base: Promise<URL>; at: number }>();

  constructor(config: OriginRegistryConfig, http: UpstreamHttp) {
    this.#config = config;
    this.#http = http;
  }

  matches(): boolean {
    return true;
  }

  async versions(address: ProviderAddress): Promise<string[] | 'not_found'> {
    const base = await this.#base(address.hostname);
    const body = await this.#json(address.hostname, new URL(`${address.namespace}/${address.type}/versions`, base));
    if (body === 'not_found') return body;
    const versions = (body as { versions?: { version?: unknown }[] }).versions;
    if (!Array.isArray(versions)) throw new SourceFailed(`registry ${address.hostname}: the version list has no "versions" array`);
    return versions.map((entry) => entry.version).filter((version): version is string => typeof version === 'string');
  }

  async package(key: PackageKey): Promise<UpstreamPackage | 'not_found'> {
    const [os, arch] = key.platform.split('_') as [string, string];
    const base = await this.#base(key.hostname);
    const documentUrl = new URL(`${key.namespace}/${key.type}/${key.version}/download/${os}/${arch}`, base);
    const body = (await this.#json(key.hostname, documentUrl)) as DownloadDocument | 'not_found';
    if (body === 'not_found') return body;
    const where = `registry ${key.hostname}`;
    const text = (value: unknown, field: string): string => {
      if (typeof value !== 'string' || value === '') throw new SourceFailed(`${where}: the download document has no "${field}"`);
      return value;
    };
    const shasum = text(body.shasum, 'shasum').toLowerCase();
    const filename = text(body.filename, 'filename');
    const sumsUrl = new URL(text(body.shasums_url, 'shasums_url'), documentUrl).toString();
    const context = requestContext(this.#http);
    const sums = await fetchText(sumsUrl, context).catch((error: unknown) => { throw asSourceFailed(error, where); });
    const listed = sums.split('\n').map((line) => line.trim().split(/\s+/)).find((fields) => fields[1] === filename)?.[0]?.toLowerCase();
    if (listed !== shasum) throw new SourceFailed(`${where}: ${filename} is ${listed === undefined ? 'not listed' : 'listed with another checksum'} in the release's SHA256SUMS`);
    const keys = body.signing_keys?.gpg_public_keys ?? [];
    // As OpenTofu: only its own registry may publish unsigned releases (it
    // vouches for their checksums itself); elsewhere no key means no trust.
    if (keys.length === 0 && key.hostname !== unsignedRegistry) {
      throw new SourceFailed(`${where}: ${packageName(key)} is not signed (the registry lists no signing keys)`);
    }
    if (keys.length > 0) {
      const signatureUrl = new URL(text(body.shasums_signature_url, 'shasums_signature_url'), documentUrl).toString();
      const signature = await fetchBytes(signatureUrl, context).catch((error: unknown) => { throw asSourceFailed(error, where); });
      await verifyDetachedSignature(Buffer.from(sums), signature, keys).catch((error: unknown) => {
        throw new SourceFailed(`${where}: ${(error as Error).message}`);
      });
    }
    return {
      url: new URL(text(body.download_url, 'download_url'), documentUrl).toString(),
      headers: {},
      expected: [`zh:${shasum}`],
      origin: where,
      signed: keys.length > 0,
    };
  }

  /** The registry's providers.v1 base URL: configured, or from service discovery (remembered for a while). */
  #base(hostname: string): Promise<URL> {
    const configured = this.#config.services[hostname];
    if (configured !== undefined) return Promise.resolve(new URL(configured.endsWith('/') ? configured : `${configured}/`));
    const known = this.#discovered.get(hostname);
    if (known && Date.now() - known.at < discoveryTtlMs) return known.base;
    const base = this.#discover(hostname);
    this.#discovered.set(hostname, { base, at: Date.now() });
    base.catch(() => this.#discovered.delete(hostname));
    return base;
  }

  async #discover(hostname: string): Promise<URL> {
    const discoveryUrl = new URL(`https://${hostname}/.well-known/terraform.json`);
    const body = await this.#json(hostname, discoveryUrl);
    const providers = body === 'not_found' ? undefined : (body as Record<string, unknown>)['providers.v1'];
    if (typeof providers !== 'string') throw new SourceFailed(`${hostname} does not offer a provider registry (no providers.v1 in ${discoveryUrl})`);
    const base = new URL(providers, discoveryUrl);
    return base.pathname.endsWith('/') ? base : new URL(`${base.toString()}/`);
  }

  async #json(hostname: string, url: URL): Promise<unknown> {
    const token = this.#config.credentials[hostname];
    const headers: Record<string, string> = token && url.hostname === hostname.split(':')[0] ? { authorization: `Bearer ${token}` } : {};
    return fetchJson(url.toString(), { ...requestContext(this.#http), headers }, `registry ${hostname}`);
  }
}

function requestContext(http: UpstreamHttp): DownloadContext {
  return { signal: AbortSignal.timeout(http.requestTimeoutMs), timeoutMs: http.requestTimeoutMs, dispatcher: http.dispatcher, maxTextBytes: 16 * 1024 * 1024 };
}

async function fetchJson(url: string, context: DownloadContext, where: string): Promise<unknown> {
  let text: string;
  try {
    text = await fetchText(url, context);
  } catch (error) {
    if (error instanceof DownloadFailed && error.status === 404) return 'not_found';
    throw asSourceFailed(error, where);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SourceFailed(`${where}: ${redactUrl(url)} did not answer with JSON`);
  }
}

function asSourceFailed(error: unknown, where: string): SourceFailed {
  if (error instanceof SourceFailed) return error;
  return new SourceFailed(`${where}: ${error instanceof Error ? error.message : String(error)}`);
}
