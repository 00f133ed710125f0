// The migrations and schema.ts describe the same tables (see schema.ts's
// header): a database created by the migrations, on SQLite and on
// PostgreSQL, has exactly the tables and columns `schemaColumns` lists, each
// with the declared SQL type and nullability.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { createTestDatabase, databaseBackends } from '../../../test/support/postgres.ts';
import { openDatabase, type DialectName } from './database.ts';
import { parseColumnDeclaration, schemaColumns, type Database } from './schema.ts';

/** One column as the database reports it, in the words of `schemaColumns`. */
type Column = `${string}.${string} ${string}`;

/** The migrator's own bookkeeping, not part of the schema. */
const migratorTables = new Set(['kysely_migration', 'kysely_migration_lock']);

function declared(): Column[] {
  return Object.entries(schemaColumns).flatMap(([table, columns]) =>
    Object.entries(columns).map(([column, declaration]): Column => {
      const { type, nullable } = parseColumnDeclaration(declaration);
      return `${table}.${column} ${type}${nullable ? ' null' : ''}`;
    }),
  );
}

const binaryTypes = new Set(['blob', 'bytea']);
const sqlTypeOf = (reported: string) => (binaryTypes.has(reported.toLowerCase()) ? 'binary' : reported.toLowerCase());

async function sqliteColumns(db: Kysely<Database>): Promise<Column[]> {
  const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(db);
  const columns: Column[] = [];
  for (const { name: table } of tables.rows) {
    if (migratorTables.has(table)) continue;
    const info = await sql<{ name: string; type: string; notnull: number; pk: number }>`select name, type, "notnull", pk from pragma_table_info(${table})`.execute(db);
    for (const column of info.rows) {
      // SQLite lets a primary key that is not an INTEGER hold NULL (a
      // compatibility quirk); a primary key is never NULL as the migrations
      // mean it, and PostgreSQL, which checks the same declaration, enforces it.
      const nullable = column.notnull === 0 && column.pk === 0;
      columns.push(`${table}.${column.name} ${sqlTypeOf(column.type)}${nullable ? ' null' : ''}`);
    }
  }
  return columns;
}

async function postgresColumns(db: Kysely<Database>): Promise<Column[]> {
  const info = await sql<{ table_name: string; column_name: string; data_type: string; is_nullable: 'YES' | 'NO' }>`
    select table_name, column_name, data_type, is_nullable from information_schema.columns where table_schema = current_schema()`.execute(db);
  return info.rows
    .filter((column) => !migratorTables.has(column.table_name))
    .map((column): Column => `${column.table_name}.${column.column_name} ${sqlTypeOf(column.data_type)}${column.is_nullable === 'YES' ? ' null' : ''}`);
}

async function migratedColumns(dialect: DialectName): Promise<Column[]> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-schema-'));
  const database = dialect === 'postgres' ? await createTestDatabase() : undefined;
  const db = await openDatabase({ dataDir, databaseUrl: database?.url });
  try {
    return dialect === 'postgres' ? await postgresColumns(db.kysely) : await sqliteColumns(db.kysely);
  } finally {
    await db.close();
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

describe('the migrations create the schema that schema.ts declares', () => {
  for (const dialect of databaseBackends()) {
    test(`every table and column, with its type and nullability (${dialect})`, async () => {
      const inDatabase = new Set(await migratedColumns(dialect));
      const inSchema = new Set(declared());
      const onlyInDatabase = [...inDatabase].filter((column) => !inSchema.has(column)).sort();
      const onlyInSchema = [...inSchema].filter((column) => !inDatabase.has(column)).sort();
      assert.deepEqual(
        { onlyInDatabase, onlyInSchema },
        { onlyInDatabase: [], onlyInSchema: [] },
        'the migrations and schema.ts disagree: change both (schema.ts\'s interfaces and schemaColumns, and a new migration)',
      );
    });
  }
});
