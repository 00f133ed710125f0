// The agent's provider mirror: an HTTPS server on the loopback interface that
// speaks the engines' provider network mirror protocol, answered by the
// provider cache. Every job gets its own URL prefix, a random key: it admits
// only running jobs' engines (the port is reachable by anything local) and
// tells the cache which job a package is for, so that packages a running job
// uses are never evicted. Job sandboxes share the agent's network namespace
// (local processes, or containers on `host`/`container:<agent>`), so
// 127.0.0.1 is the agent for them too.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
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

type ProviderParams = { key: string; hostname: string; namespace: string; type: string };

export class ProviderMirror {
  readonly #app: FastifyInstance;
  readonly #cache: ProviderCache;
  readonly #platform: string;
  readonly #caPem: string;
  readonly #sessions = new Map<string, CacheSession>();
  #origin = '';

  private constructor(app: FastifyInstance, options: ProviderMirrorOptions, caPem: string) {
    this.#app = app;
    this.#cache = options.cache;
    this.#platform = options.platform;
    this.#caPem = caPem;
  }

  static async start(options: ProviderMirrorOptions): Promise<ProviderMirror> {
    const certificate = await createMirrorCertificate({ hosts: ['127.0.0.1', 'localhost'] });
    const app = Fastify({
      https: { key: certificate.keyPem, cert: certificate.certPem },
      loggerInstance: options.logger.child({ component: 'provider-mirror' }, { level: 'warn' }) as FastifyBaseLogger,
      // Every engine request would be logged; the cache logs what matters (downloads, damage, eviction).
      logController: new LogController({ disableRequestLogging: true }),
      // A job's archive download can take a while on a slow disk; the engine has its own timeout.
      requestTimeout: 0,
      forceCloseConnections: true,
    });
    const mirror = new ProviderMirror(app, options, certificate.caPem);
    mirror.#routes();
    const address = await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
    mirror.#origin = address.replace(/\/$/, '');
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

  async close(): Promise<void> {
    await this.#app.close();
  }

  #routes(): void {
    const app = this.#app;
    app.get<{ Params: ProviderParams & { file: string } }>('/:key/:hostname/:namespace/:type/:file', async (request, reply) => {
      const { session, address } = this.#resolve(request.params, reply) ?? {};
      if (!session || !address) return reply;
      const { file } = request.params;
      if (file === 'index.json') {
        const versions = await this.#answer(reply, session, () => this.#cache.versions(address, session));
        if (versions === undefined) return reply;
        return { versions: Object.fromEntries(versions.map((version) => [version, {}])) };
      }
      const version = /^(.+)\.json$/.exec(file)?.[1];
      if (version === undefined || !isValidVersion(version)) return notFound(reply, `no such document: ${file}`);
      const key: PackageKey = { ...address, version, platform: this.#platform };
      const stored = await this.#answer(reply, session, () => this.#cache.package(key, session));
      if (stored === undefined) return reply;
      return { archives: { [this.#platform]: { url: `${version}/${packageFileName(key)}`, hashes: [stored.hashes.h1, stored.hashes.zh].filter((hash) => hash !== undefined) } } };
    });
    app.get<{ Params: ProviderParams & { version: string; file: string } }>('/:key/:hostname/:namespace/:type/:version/:file', async (request, reply) => {
      const { session, address } = this.#resolve(request.params, reply) ?? {};
      if (!session || !address) return reply;
      const { version, file } = request.params;
      const key: PackageKey = { ...address, version, platform: this.#platform };
      if (!isValidVersion(version) || !isValidPlatform(key.platform) || file !== packageFileName(key)) return notFound(reply, `no such archive: ${version}/${file}`);
      const stored = await this.#answer(reply, session, () => this.#cache.package(key, session));
      if (stored === undefined) return reply;
      return reply.type('application/zip').header('content-length', stored.size).send(createReadStream(stored.file));
    });
    app.setNotFoundHandler((_request, reply) => notFound(reply, 'not a provider mirror path'));
  }

  #resolve(params: ProviderParams, reply: FastifyReply): { session: CacheSession; address: ProviderAddress } | undefined {
    const session = this.#sessions.get(params.key);
    if (session === undefined) {
      void reply.code(403).send({ errors: ['this mirror URL belongs to a job that is not running on this agent'] });
      return undefined;
    }
    const address = parseProviderAddress(params.hostname, params.namespace, params.type);
    if (address === undefined) {
      void notFound(reply, 'not a valid provider address');
      return undefined;
    }
    return { session, address };
  }

  /** Runs a cache lookup and turns "not found" and upstream trouble into the protocol's answers. */
  async #answer<T>(reply: FastifyReply, session: CacheSession, lookup: () => Promise<T | 'not_found'>): Promise<T | undefined> {
    try {
      const result = await lookup();
      if (result !== 'not_found') return result;
      void notFound(reply, 'no such provider or version upstream');
    } catch (error) {
      const message = error instanceof UpstreamUnavailable ? error.message : `internal error: ${(error as Error).message}`;
      // The engine shows only "status 502": the reason goes into the run log.
      session.note(`Outpost provider cache: ${message}`);
      void reply.code(502).send({ errors: [message] });
    }
    return undefined;
  }
}

function notFound(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(404).send({ errors: [message] });
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
