// The real PostgreSQL that tests use. `.ci/run` starts a private server
// (scripts/start-postgres.sh) and exports OUTPOST_TEST_POSTGRES_URL; each test
// gets a database of its own so tests can run in parallel and leave nothing
// behind.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type DatabaseBackend = 'sqlite' | 'postgres';

export interface TestDatabase {
  /** Connection URL of the new, empty database. */
  readonly url: string;
  readonly name: string;
  /** Drops the database, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

const urlVariable = 'OUTPOST_TEST_POSTGRES_URL';

/**
 * URL of the PostgreSQL server for tests (a superuser connection to an
 * existing database), or undefined outside CI when none is configured.
 * In CI a missing URL is an error: PostgreSQL tests must never be skipped
 * silently there.
 */
export function postgresUrl(): string | undefined {
  const url = process.env[urlVariable];
  if (url !== undefined && url !== '') return url;
  if (process.env.CI === 'true') {
    throw new Error(
      `${urlVariable} is not set, and CI=true: CI must run the PostgreSQL tests. ` +
        `Start a server with scripts/start-postgres.sh and export ${urlVariable} (.ci/run does both).`,
    );
  }
  return undefined;
}

let skipWarningShown = false;

/**
 * The database backends a server test should run against: both when
 * PostgreSQL is configured, SQLite only (with a one-time warning) otherwise.
 */
export function databaseBackends(): DatabaseBackend[] {
  if (postgresUrl() !== undefined) return ['sqlite', 'postgres'];
  if (!skipWarningShown) {
    skipWarningShown = true;
    console.warn(
      `warning: ${urlVariable} is not set, so PostgreSQL tests are skipped. ` +
        `Run: export ${urlVariable}="$(scripts/start-postgres.sh)"`,
    );
  }
  return ['sqlite'];
}

/** Creates an empty, uniquely named database on the test server. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = postgresUrl();
  if (serverUrl === undefined) {
    throw new Error(`createTestDatabase needs PostgreSQL: set ${urlVariable} (see scripts/start-postgres.sh)`);
  }
  // Lower-case letters and digits only, so the name needs no quoting rules
  // beyond the double quotes below; the pid tells which test process made it.
  const name = `${databasePrefix()}${randomBytes(6).toString('hex')}`;
  sweepOnce ??= dropDatabasesOfDeadProcesses(serverUrl);
  await sweepOnce;
  await runAdminStatement(serverUrl, `CREATE DATABASE "${name}"`);

  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await runAdminStatement(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/** Databases that createTestDatabase made in this process and that still exist. */
export async function testDatabasesOfThisProcess(): Promise<string[]> {
  const serverUrl = postgresUrl();
  if (serverUrl === undefined) return [];
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const pattern = `${databasePrefix().replaceAll('_', '\\_')}%`;
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname',
      [pattern],
    );
    return rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

let sweepOnce: Promise<void> | undefined;

// A test process that was killed (or forgot cleanup) cannot drop its
// databases; the next one does, so a developer's server does not fill up.
// The pid in the name tells whether its owner still runs.
async function dropDatabasesOfDeadProcesses(serverUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  let names: string[];
  try {
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname ~ '^outpost_test_[0-9]+_[0-9a-f]+$'",
    );
    names = rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
  for (const name of names) {
    const ownerPid = Number(name.split('_')[2]);
    if (processIsRunning(ownerPid)) continue;
    await runAdminStatement(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
  }
}

function processIsRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function databasePrefix(): string {
  return `outpost_test_${process.pid}_`;
}

// CREATE/DROP DATABASE cannot run inside a transaction or on the database
// itself, so each uses a short-lived connection to the server's own database.
async function runAdminStatement(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query(statement);
  } catch (error) {
    throw new Error(`PostgreSQL at ${redactPassword(serverUrl)} refused "${statement}": ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
