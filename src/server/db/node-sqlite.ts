// Adapts Node's built-in node:sqlite to the small database interface Kysely's
// SqliteDialect expects (the better-sqlite3 shape), so the embedded mode needs
// no native addon. Kysely asks `reader` to choose between all() and run().
import { DatabaseSync, type StatementSync, type SQLInputValue } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

function toSqlite(value: unknown): SQLInputValue {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value === undefined) return null;
  if (value instanceof Date) return value.getTime();
  return value as SQLInputValue;
}

class NodeSqliteStatement implements SqliteStatement {
  readonly #statement: StatementSync;
  readonly reader: boolean;

  constructor(statement: StatementSync) {
    this.#statement = statement;
    this.reader = statement.columns().length > 0;
  }

  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.#statement.all(...parameters.map(toSqlite));
  }

  run(parameters: ReadonlyArray<unknown>): { changes: number | bigint; lastInsertRowid: number | bigint } {
    return this.#statement.run(...parameters.map(toSqlite));
  }

  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.#statement.iterate(...parameters.map(toSqlite)) as IterableIterator<unknown>;
  }
}

export function openNodeSqlite(file: string): SqliteDatabase {
  const database = new DatabaseSync(file);
  // WAL lets readers proceed during a write; busy_timeout absorbs short lock
  // waits (e.g. a CLI inspecting the file) instead of failing requests.
  database.exec('PRAGMA journal_mode = WAL');
  database.exec('PRAGMA synchronous = NORMAL');
  database.exec('PRAGMA busy_timeout = 5000');
  database.exec('PRAGMA foreign_keys = ON');
  return {
    close: () => database.close(),
    prepare: (sql: string) => new NodeSqliteStatement(database.prepare(sql)),
  };
}
