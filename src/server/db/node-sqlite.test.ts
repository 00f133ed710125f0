import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { openNodeSqlite, StatementCache } from './node-sqlite.ts';

describe('StatementCache', () => {
  it('prepares a text once and reuses it; past the limit the least recently used goes', () => {
    const database = new DatabaseSync(':memory:');
    const prepared: string[] = [];
    const cache = new StatementCache((sql) => (prepared.push(sql), database.prepare(sql)), 2);
    const one = cache.get('select 1');
    assert.equal(cache.get('select 1'), one);
    cache.get('select 2');
    cache.get('select 1'); // now the most recently used
    cache.get('select 3'); // evicts 'select 2'
    assert.equal(cache.size, 2);
    assert.equal(cache.get('select 1'), one);
    cache.get('select 2');
    assert.deepEqual(prepared, ['select 1', 'select 2', 'select 3', 'select 2']);
    database.close();
  });
});

describe('openNodeSqlite', () => {
  it('runs a reused statement with new parameters, and after the schema changed', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-sqlite-'));
    const database = openNodeSqlite(path.join(dir, 'test.db'));
    try {
      database.prepare('create table t (id integer primary key, name)').run([]);
      const insert = database.prepare('insert into t (id, name) values (?, ?)');
      insert.run([1, 'a']);
      database.prepare('insert into t (id, name) values (?, ?)').run([2, true]);
      const select = database.prepare('select * from t where id >= ? order by id');
      assert.equal(database.prepare('select * from t where id >= ? order by id'), select);
      assert.equal(select.reader, true);
      assert.equal(insert.reader, false);
      assert.deepEqual(select.all([1]).map((row) => ({ ...(row as object) })), [{ id: 1, name: 'a' }, { id: 2, name: 1 }]);
      assert.deepEqual(select.all([2]).map((row) => ({ ...(row as object) })), [{ id: 2, name: 1 }]);
      database.prepare('alter table t add column extra text').run([]);
      assert.deepEqual(
        database.prepare('select * from t where id >= ? order by id').all([2]).map((row) => ({ ...(row as object) })),
        [{ id: 2, name: 1, extra: null }],
      );
    } finally {
      database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
