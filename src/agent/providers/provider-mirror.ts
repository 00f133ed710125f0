// The agent's provider mirror: an HTTPS server on the loopback interface that
// speaks the engines' provider network mirror protocol, answered by the
// provider cache. Every job gets its own URL prefix, a random key: it admits
// only running jobs' engines (the port is reachable by anything local) and
// tells the cache which job a package is for, so that packages a running job
// uses are never evicted. Job sandboxes share the agent's network namespace
// (local processes, or containers on `host`/`container:<agent>`), so
// 127.0.0.1 is the agent for them too.
//
// Plain node:https, not a web framework: the protocol is two GET paths, and
// the mirror runs in every agent from its start, where Fastify cost about
// 20 MiB of resident memory.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config.ts';
import { createMirrorCertificate } from './mirror-certificate.ts';
import { isValidPlatform, isValidVersion, packageFileName, parseProviderAddress, type PackageKey, type ProviderAddress } from './provider-address.ts';
import { UpstreamUnavailable, type CacheSession, type ProviderCache } from './provider-cache.ts';

export interface ProviderMirrorOptions {
  cache: ProviderCache;
  /** The one platform jobs run on (`linux_amd64`): the only archive the mirror lists. */
  platform: string;
  logger: Logger;
  /** Loopback port to listen on; 0 picks a free one. */
  port?: number;
}

/** What a job's operation needs to use the mirror. */
export interface MirrorAccess {
  /** `https://127.0.0.1:<port>/<key>/`: the network_mirror URL for the engine. */
  readonly url: string;
  /** The CA the engine must trust for that URL. */
  readonly caPem: string;
  readonly served: CacheSession['served'];
  /** The job ended: its key stops working and its packages are unpinned. */
  close(): void;
}

/** A response: JSON, or a package archive streamed from the cache. */
type Answer = { status: number; json: unknown } | { status: 200; file: string; size: number };

const notFound = (message: string): Answer => ({ status: 404, json: { errors: [message] } });

export class ProviderMirror {
  readonly #server: Server;
  readonly #cache: ProviderCache;
  readonly #platform: string;
  readonly #caPem: string;
  readonly #logger: Logger;
  readonly #sessions = new Map<string, CacheSession>();
  #origin = '';

  private constructor(server: Server, options: ProviderMirrorOptions, caPem: string) {
    this.#server = server;
    this.#cache = options.cache;
    this.#platform = options.platform;
    this.#caPem = caPem;
    this.#logger = options.logger.child({ component: 'provider-mirror' });
  }

  static async start(options: ProviderMirrorOptions): Promise<ProviderMirror> {
    const certificate = await createMirrorCertificate({ hosts: ['127.0.0.1', 'localhost'] });
    // No request timeout: a job's archive download can take a while on a slow disk; the engine has its own.
    const server = createServer({ key: certificate.keyPem, cert: certificate.certPem, requestTimeout: 0 });
    const mirror = new ProviderMirror(server, options, certificate.caPem);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => void mirror.#handle(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    mirror.#origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    options.logger.info({ url: mirror.#origin }, 'provider mirror listening');
    return mirror;
  }

  get origin(): string {
    return this.#origin;
  }

  open(jobId: string, note: (line: string) => void): MirrorAccess {
    const key = randomBytes(24).toString('base64url');
    const session = this.#cache.openSession(jobId, note);
    this.#sessions.set(key, session);
    return {
      url: `${this.#origin}/${key}/`,
      caPem: this.#caPem,
      served: session.served,
      close: () => {
        this.#sessions.delete(key);
        this.#cache.closeSession(session);
      },
    };
  }

  /** Stops listening and drops open connections (an engine still downloading gets a reset). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let answer: Answer;
    try {
      answer = request.method === 'GET' || request.method === 'HEAD' ? await this.#route(request.url ?? '/') : notFound('not a provider mirror path');
    } catch (error) {
      this.#logger.warn({ err: error, url: request.url }, 'provider mirror request failed');
      answer = { status: 500, json: { errors: [`internal error: ${(error as Error).message}`] } };
    }
    if ('file' in answer) {
      response.writeHead(200, { 'content-type': 'application/zip', 'content-length': answer.size });
      createReadStream(answer.file)
        .on('error', (error) => response.destroy(error))
        .pipe(response);
      return;
    }
    const body = JSON.stringify(answer.json);
    response.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  /**
   * `/<key>/<hostname>/<namespace>/<type>/index.json`, `…/<version>.json`
   * and `…/<version>/<archive>`, with each segment percent-decoded; what
   * the segments name is checked before anything is looked up.
   */
  async #route(url: string): Promise<Answer> {
    let segments: string[];
    try {
      segments = url.split('?', 1)[0]!.split('/').slice(1).map(decodeURIComponent);
    } catch {
      return notFound('not a provider mirror path');
    }
    if (segments.length !== 5 && segments.length !== 6) return notFound('not a provider mirror path');
    const [key, hostname, namespace, type] = segments as [string, string, string, string];
    const session = this.#sessions.get(key);
    if (session === undefined) return { status: 403, json: { errors: ['this mirror URL belongs to a job that is not running on this agent'] } };
    const address = parseProviderAddress(hostname, namespace, type);
    if (address === undefined) return notFound('not a valid provider address');
    return segments.length === 5 ? this.#document(session, address, segments[4]!) : this.#archive(session, address, segments[4]!, segments[5]!);
  }

  async #document(session: CacheSession, address: ProviderAddress, file: string): Promise<Answer> {
    if (file === 'index.json') {
      return this.#answer(session, () => this.#cache.versions(address, session), (versions) => ({
        status: 200,
        json: { versions: Object.fromEntries(versions.map((version) => [version, {}])) },
      }));
    }
    const version = /^(.+)\.json$/.exec(file)?.[1];
    if (version === undefined || !isValidVersion(version)) return notFound(`no such document: ${file}`);
    const key: PackageKey = { ...address, version, platform: this.#platform };
    return this.#answer(session, () => this.#cache.package(key, session), (stored) => ({
      status: 200,
      json: { archives: { [this.#platform]: { url: `${version}/${packageFileName(key)}`, hashes: [stored.hashes.h1, stored.hashes.zh].filter((hash) => hash !== undefined) } } },
    }));
  }

  async #archive(session: CacheSession, address: ProviderAddress, version: string, file: string): Promise<Answer> {
    const key: PackageKey = { ...address, version, platform: this.#platform };
    if (!isValidVersion(version) || !isValidPlatform(key.platform) || file !== packageFileName(key)) return notFound(`no such archive: ${version}/${file}`);
    return this.#answer(session, () => this.#cache.package(key, session), (stored) => ({ status: 200, file: stored.file, size: stored.size }));
  }

  /** Runs a cache lookup and turns "not found" and upstream trouble into the protocol's answers. */
  async #answer<T>(session: CacheSession, lookup: () => Promise<T | 'not_found'>, found: (result: T) => Answer): Promise<Answer> {
    let result: T | 'not_found';
    try {
      result = await lookup();
    } catch (error) {
      const message = error instanceof UpstreamUnavailable ? error.message : `internal error: ${(error as Error).message}`;
      // The engine shows only "status 502": the reason goes into the run log.
      session.note(`Outpost provider cache: ${message}`);
      return { status: 502, json: { errors: [message] } };
    }
    return result === 'not_found' ? notFound('no such provider or version upstream') : found(result);
  }
}

/** How the job's engine gets its providers: through the agent's mirror, or itself (with the configured registry hosts). */
export function providerEnvironment(providers: MirrorAccess | undefined, config: Pick<AgentConfig, 'providerRegistryServices' | 'downloadTimeout'>): Record<string, string> {
  if (providers === undefined) {
    const services = config.providerRegistryServices;
    return services === undefined ? {} : { OUTPOST_JOB_PROVIDER_REGISTRY_SERVICES: JSON.stringify(services) };
  }
  return {
    OUTPOST_JOB_PROVIDER_MIRROR_URL: providers.url,
    OUTPOST_JOB_PROVIDER_MIRROR_CA: providers.caPem,
    // The mirror may be downloading a package while the engine waits for its answer.
    OUTPOST_JOB_PROVIDER_MIRROR_TIMEOUT: String(Math.ceil(config.downloadTimeout / 1000) + 60),
  };
}
