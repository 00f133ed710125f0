// JSON:API documents in the TFE API v2 style: dasherized attribute names,
// `data` with `id`, `type`, `attributes`, `relationships`. The resources'
// shapes are the protocol's (src/protocol/api-resources.ts); presenters
// return those types, so a field the schema lacks does not compile.
import type { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';

export function relation(type: string, id: string | null | undefined): { data: { id: string; type: string } | null } {
  return { data: id ? { id, type } : null };
}

/** A time (ms since the epoch) as the API shows it, ISO 8601; null stays null. */
export function iso(ms: number): string;
export function iso(ms: number | null | undefined): string | null;
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** Validates a request body against a schema; failures become 422 validation_failed. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  // Endpoints whose body is optional pass a default instead of undefined.
  if (body === undefined || body === null) throw new OutpostError('invalid_request', 'the body is empty, which is not valid JSON: this request needs a JSON document');
  const result = schema.safeParse(body);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
    throw new OutpostError('validation_failed', problems.join('; '), { problems });
  }
  // PostgreSQL text cannot hold a NUL character (the insert fails), and no
  // name, value or message needs one: refuse it here, the same on both backends.
  const nul = pathOfNul(result.data, []);
  if (nul !== undefined) {
    const problem = `${nul.join('.') || '(body)'}: must not contain a NUL character`;
    throw new OutpostError('validation_failed', problem, { problems: [problem] });
  }
  return result.data;
}

/** The path of the first string (or object key) in `value` that contains a NUL character. */
function pathOfNul(value: unknown, at: (string | number)[]): (string | number)[] | undefined {
  if (typeof value === 'string') return value.includes('\0') ? at : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const here = [...at, Array.isArray(value) ? Number(key) : key];
    if (key.includes('\0')) return here;
    const found = pathOfNul(item, here);
    if (found !== undefined) return found;
  }
  return undefined;
}
