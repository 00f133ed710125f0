// Names are unique per scope (pools and workspaces per organization,
// variables per workspace and category). The routes look for a duplicate
// first to answer with a precise message, but only the database's UNIQUE
// constraint is atomic: two concurrent requests both pass the look-up, and
// the second insert fails. That failure is the same `already_exists`, not an
// internal error.
import { OutpostError } from '../../protocol/errors.ts';

/** Whether a statement failed on a UNIQUE or primary key constraint, on either backend. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  // PostgreSQL: SQLSTATE 23505 (unique_violation); node:sqlite: SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_CONSTRAINT_PRIMARYKEY (1555).
  return code === '23505' || errcode === 2067 || errcode === 1555;
}

/** Runs a write guarded by a UNIQUE constraint; a violation becomes 409 `already_exists` with `message`. */
export async function uniqueWrite<T>(write: () => Promise<T>, message: string): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error)) throw new OutpostError('already_exists', message);
    throw error;
  }
}
