// Opens the control plane's database: embedded SQLite (node:sqlite) in the
// data dir, or PostgreSQL when a URL is configured. Migrations run at start.
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import pg from 'pg';
import type { Database } from './schema.ts';
import { openNodeSqlite } from './node-sqlite.ts';
import { initialMigration } from './migrations/0001-initial.ts';
import { poolWebhooksMigration } from './migrations/0002-pool-webhooks.ts';
import { vcsMigration } from './migrations/0003-vcs.ts';
import { tfeClientsMigration } from './migrations/0004-tfe-clients.ts';

export type DialectName = 'sqlite' | 'postgres';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: DialectName;
  close(): Promise<void>;
}

// int8 (bigint) comes back from pg as a string to protect precision; every
// bigint here is an epoch-ms time or a byte count, well inside 2^53.
pg.types.setTypeParser(20, (value) => Number(value));

export interface DatabaseOptions {
  dataDir: string;
  databaseUrl?: string | undefined;
  /**
   * Called when PostgreSQL drops a connection that sits idle in the pool (a
   * server restart, a failover, an administrator's terminate). The pool
   * replaces it on the next query; without a listener the driver would throw
   * the error out of the process.
   */
  onIdleConnectionError?: (error: Error) => void;
}

export async function openDatabase(options: DatabaseOptions): Promise<Db> {
  let kysely: Kysely<Database>;
  let dialect: DialectName;
  if (options.databaseUrl) {
    dialect = 'postgres';
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 20 });
    pool.on('error', (error) => options.onIdleConnectionError?.(error));
    kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else {
    dialect = 'sqlite';
    const file = path.join(options.dataDir, 'outpost.db');
    createPrivately(options.dataDir, file);
    kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: openNodeSqlite(file) }) });
  }
  await migrate(kysely, dialect);
  return { kysely, dialect, close: () => kysely.destroy() };
}

/**
 * The data dir and database hold every workspace's state and secrets: only
 * the server's user may read them (0700 / 0600), also when an older version
 * created them with the umask's modes. SQLite gives its -wal and -shm files
 * the database file's mode, so creating that file first covers them.
 */
function createPrivately(dataDir: string, file: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  closeSync(openSync(file, 'a', 0o600));
  for (const [existing, mode] of [[dataDir, 0o700], [file, 0o600], [`${file}-wal`, 0o600], [`${file}-shm`, 0o600]] as const) {
    try {
      chmodSync(existing, mode);
    } catch (error) {
      // Absent, or owned by another user (a volume prepared by an operator): leave as is.
      if (!['ENOENT', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
  }
}

/** Resolves when the database answers a trivial query; rejects with the driver's error otherwise. */
export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}

class StaticMigrations implements MigrationProvider {
  readonly #migrations: Record<string, Migration>;
  constructor(migrations: Record<string, Migration>) {
    this.#migrations = migrations;
  }
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.#migrations;
  }
}

async function migrate(kysely: Kysely<Database>, dialect: DialectName): Promise<void> {
  const migrator = new Migrator({
    db: kysely,
    provider: new StaticMigrations({
      '0001-initial': initialMigration(dialect === 'postgres' ? 'bytea' : 'blob'),
      '0002-pool-webhooks': poolWebhooksMigration,
      '0003-vcs': vcsMigration,
      '0004-tfe-clients': tfeClientsMigration,
    }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed: ${(error as Error).message}`);
  }
}
