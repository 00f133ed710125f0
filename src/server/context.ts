// Everything a route or service needs, built once by the server at start-up
// and passed down explicitly (no module-level singletons), so tests and
// several server instances in one process stay independent.
import type { Logger } from 'pino';
import type { Kysely } from 'kysely';
import type { BlobStore } from './blobs/blob-store.ts';
import type { ServerConfig } from './config.ts';
import type { DialectName } from './db/database.ts';
import type { Database } from './db/schema.ts';
import type { Notifier } from './notifier.ts';
import type { UrlSigner } from './http/signed-urls.ts';
import type { SecretSealer } from './secrets/sealer.ts';

export interface ServerContext {
  readonly config: ServerConfig;
  readonly db: Kysely<Database>;
  readonly dialect: DialectName;
  readonly blobs: BlobStore;
  readonly notifier: Notifier;
  /** Seals and opens sensitive variable values. */
  readonly sealer: SecretSealer;
  /** Makes and checks the pre-signed URLs TFE clients follow without a token. */
  readonly signer: UrlSigner;
  readonly logger: Logger;
  /** URL agents and jobs use to reach this server. */
  readonly publicUrl: string;
  readonly now: () => number;
}
