// SQL for run logs: append-only chunks keyed by (run, phase, byte offset).
// A phase's size is the end of its last chunk.
import { sql, type Kysely } from 'kysely';
import type { JobKind } from '../../protocol/statuses.ts';
import type { Database } from '../db/schema.ts';

export async function logSize(db: Kysely<Database>, runId: string, phase: JobKind): Promise<number> {
  const row = await db
    .selectFrom('log_chunks')
    .select(['offset', sql<number>`length(data)`.as('length')])
    .where('run_id', '=', runId)
    .where('phase', '=', phase)
    .orderBy('offset', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? Number(row.offset) + Number(row.length) : 0;
}

export async function insertChunk(db: Kysely<Database>, runId: string, phase: JobKind, offset: number, data: Uint8Array): Promise<void> {
  await db.insertInto('log_chunks').values({ run_id: runId, phase, offset, data }).execute();
}

/**
 * The bytes of a phase's log from `from` on (at most `limit` bytes). Only the
 * chunks overlapping [from, from + limit) are fetched, found through the
 * primary key, so memory and work are bounded by `limit` plus one chunk at
 * either end, however long the log is.
 */
export async function readLog(db: Kysely<Database>, runId: string, phase: JobKind, from: number, limit: number): Promise<Buffer> {
  // Chunks are contiguous: the one holding byte `from` is the last to start at or before it.
  const first = await db
    .selectFrom('log_chunks')
    .select('offset')
    .where('run_id', '=', runId)
    .where('phase', '=', phase)
    .where('offset', '<=', from)
    .orderBy('offset', 'desc')
    .limit(1)
    .executeTakeFirst();
  const rows = await db
    .selectFrom('log_chunks')
    .select(['offset', 'data'])
    .where('run_id', '=', runId)
    .where('phase', '=', phase)
    .where('offset', '>=', first ? Number(first.offset) : 0)
    .where('offset', '<', from + limit)
    .orderBy('offset')
    .execute();
  const parts: Buffer[] = [];
  let total = 0;
  for (const row of rows) {
    const data = Buffer.from(row.data);
    const piece = data.subarray(Math.max(0, from - Number(row.offset)));
    if (piece.length === 0) continue;
    parts.push(piece);
    total += piece.length;
    if (total >= limit) break;
  }
  return Buffer.concat(parts).subarray(0, limit);
}
