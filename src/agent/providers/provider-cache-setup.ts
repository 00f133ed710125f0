// Builds the provider cache and its mirror from the agent's settings: the
// upstream sources in order (configured network mirrors, then the origin
// registry), one HTTP client for them that honours the proxy variables and
// the configured CA certificates, the store under <cache dir>/providers.
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { NetworkMirrorSetting } from '../cache-config.ts';
import { hostPlatform } from './provider-address.ts';
import { ProviderCache } from './provider-cache.ts';
import { ProviderMirror } from './provider-mirror.ts';
import { NetworkMirrorSource, OriginRegistrySource, type ProviderSource } from './provider-sources.ts';
import { ProviderStore } from './provider-store.ts';

export interface ProviderCacheSettings {
  cacheDir: string;
  sizeLimitMb: number;
  versionsTtlMs: number;
  networkMirrors: readonly NetworkMirrorSetting[];
  registryServices: Readonly<Record<string, string>>;
  registryCredentials: Readonly<Record<string, string>>;
  caCert?: string | undefined;
  downloadTimeoutMs: number;
  port: number;
  /** Told of every package served: from disk or downloaded (the agent's metrics). */
  onServe?: ((result: 'hit' | 'download') => void) | undefined;
}

/** Metadata requests (version lists, download documents, checksums) must answer within this. */
const requestTimeoutMs = 60_000;

export async function startProviderMirror(settings: ProviderCacheSettings, logger: Logger): Promise<ProviderMirror> {
  const tls = settings.caCert === undefined ? {} : { ca: [...rootCertificates, settings.caCert] };
  // Made on the first upstream request: an agent whose cache holds what its
  // jobs ask for never loads undici (about 20 MiB of an idle agent).
  let upstream: Promise<Dispatcher> | undefined;
  const dispatcher = (): Promise<Dispatcher> =>
    (upstream ??= import('undici').then(({ EnvHttpProxyAgent, interceptors }) =>
      new EnvHttpProxyAgent({ connect: tls, requestTls: tls }).compose(interceptors.redirect({ maxRedirections: 5 })),
    ));
  const http = { dispatcher, requestTimeoutMs };
  const sources: ProviderSource[] = [
    ...settings.networkMirrors.map((mirror) => new NetworkMirrorSource(mirror, http)),
    new OriginRegistrySource({ services: settings.registryServices, credentials: settings.registryCredentials }, http),
  ];
  const store = new ProviderStore(path.join(settings.cacheDir, 'providers'));
  await store.open();
  const cache = new ProviderCache({
    store,
    sources,
    versionsTtlMs: settings.versionsTtlMs,
    sizeLimitBytes: settings.sizeLimitMb * 1024 * 1024,
    downloadTimeoutMs: settings.downloadTimeoutMs,
    dispatcher,
    logger: logger.child({ component: 'provider-cache' }),
    onServe: settings.onServe,
  });
  void cache.evict('agent start');
  logger.info({ dir: store.root, sources: sources.map((source) => source.name), sizeLimitMb: settings.sizeLimitMb }, 'provider cache ready');
  return ProviderMirror.start({ cache, platform: hostPlatform(), logger, port: settings.port });
}
