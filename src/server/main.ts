// `outpost server`: the control plane. Opens the database (running
// migrations), bootstraps the default organization and admin token, serves
// the API, and sweeps expired leases until SIGTERM/SIGINT.
import type { Server as HttpsServer } from 'node:https';
import path from 'node:path';
import type { Logger } from 'pino';
import { loadOrReport } from '../config/settings.ts';
import { createLogger } from '../logging/logger.ts';
import { buildApp } from './app.ts';
import { FilesystemBlobStore } from './blobs/blob-store.ts';
import { loadServerConfig, type ServerConfig } from './config.ts';
import type { ServerContext } from './context.ts';
import { openDatabase } from './db/database.ts';
import { UrlSigner } from './http/signed-urls.ts';
import { LocalNotifier } from './notifier.ts';
import { PostgresNotifier } from './postgres-notifier.ts';
import { bootstrap, issueApiToken } from './organizations/service.ts';
import { loadSealingKey, SecretSealer } from './secrets/sealer.ts';
import { startSweeper } from './sweeper.ts';
import { httpsOptions, loadTlsPair, watchTlsFiles } from './tls.ts';
import { startVcsWorker } from './vcs/worker.ts';
import { startWebhookDispatcher } from './webhooks/dispatcher.ts';

export interface RunningServer {
  readonly url: string;
  readonly generatedAdminToken: string | undefined;
  /** Creates another API token (the quickstart prints a fresh one each start). */
  issueApiToken(description: string): Promise<string>;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  // Checked first: a bad certificate stops the start before anything is opened.
  const tlsFiles = config.tlsCert && config.tlsKey ? { certFile: config.tlsCert, keyFile: config.tlsKey } : undefined;
  const tlsPair = tlsFiles ? await loadTlsPair(tlsFiles) : undefined;
  const db = await openDatabase({
    dataDir: config.dataDir,
    databaseUrl: config.databaseUrl,
    onIdleConnectionError: (error) => logger.warn({ err: error }, 'PostgreSQL closed an idle connection; the next query opens a new one'),
  });
  let shuttingDown = false;
  const notifier =
    db.dialect === 'postgres' && config.databaseUrl ? await PostgresNotifier.start(db.kysely, config.databaseUrl, logger) : new LocalNotifier();
  const listenHost = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host;
  const sealingKey = await loadSealingKey(config.encryptionKey, config.dataDir);
  const ctx: ServerContext = {
    config,
    db: db.kysely,
    dialect: db.dialect,
    blobs: new FilesystemBlobStore(path.join(config.dataDir, 'blobs')),
    notifier,
    sealer: new SecretSealer(sealingKey),
    signer: new UrlSigner(sealingKey),
    logger,
    // Filled in once the port is known (port 0 picks a free one).
    publicUrl: config.publicUrl ?? '',
    now: () => Date.now(),
  };
  if (db.dialect === 'postgres' && !config.encryptionKey) {
    logger.warn(
      { keyFile: path.join(config.dataDir, 'encryption.key') },
      'OUTPOST_ENCRYPTION_KEY is not set: sensitive values are sealed with a key in this server\'s data dir; several replicas must share one OUTPOST_ENCRYPTION_KEY',
    );
  }
  const { generatedAdminToken } = await bootstrap(ctx);
  const app = buildApp(ctx, () => shuttingDown, { https: tlsPair ? httpsOptions(tlsPair) : undefined });
  // Node's default accept backlog (511) overflows when a thousand agents
  // connect at once (a server restart, a pool asking for work together): the
  // kernel drops the excess connection attempts and the client retries after
  // 1 s, then 3 s. The kernel caps this at net.core.somaxconn.
  await app.listen({ host: config.listen.host, port: config.listen.port, backlog: 4096 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  const url = config.publicUrl ?? `${tlsPair ? 'https' : 'http'}://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
  (ctx as { publicUrl: string }).publicUrl = url;
  const stopTlsWatch = tlsFiles && tlsPair ? watchTlsFiles(app.server as unknown as HttpsServer, tlsFiles, tlsPair, config.tlsReloadInterval, logger) : () => {};
  const stopSweeper = startSweeper(ctx);
  const stopWebhooks = startWebhookDispatcher(ctx);
  const stopVcs = startVcsWorker(ctx);
  logger.info({ url, database: db.dialect, dataDir: config.dataDir, tls: tlsPair !== undefined }, 'listening');
  return {
    url,
    generatedAdminToken,
    issueApiToken: (description) => issueApiToken(ctx, description),
    async close() {
      shuttingDown = true;
      stopTlsWatch();
      stopSweeper();
      await stopWebhooks();
      await stopVcs();
      await app.close();
      if (notifier instanceof PostgresNotifier) await notifier.close();
      await db.close();
    },
  };
}

export function printAdminToken(token: string, out: NodeJS.WritableStream = process.stdout): void {
  out.write(
    [
      '',
      'An admin token was created. It is shown only this once; store it now:',
      '',
      `    ${token}`,
      '',
      'Use it as OUTPOST_TOKEN for the CLI, or as a Bearer token for the API.',
      '',
    ].join('\n'),
  );
}

export async function runServerCommand(): Promise<number> {
  const config = loadOrReport('outpost server', () => loadServerConfig());
  if (config === undefined) return 2;
  const logger = createLogger({ format: config.logFormat, level: config.logLevel, name: 'outpost-server' });
  let server: RunningServer;
  try {
    server = await startServer(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'server failed to start');
    return 1;
  }
  if (server.generatedAdminToken) printAdminToken(server.generatedAdminToken);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close();
  return 0;
}
