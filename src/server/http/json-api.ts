// JSON:API documents in the TFE API v2 style: dasherized attribute names,
// `data` with `id`, `type`, `attributes`, `relationships`.
import type { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';

export interface ResourceObject {
  id: string;
  type: string;
  attributes: Record<string, unknown>;
  relationships?: Record<string, { data: { id: string; type: string } | null }>;
  links?: Record<string, string>;
}

export function relation(type: string, id: string | null | undefined): { data: { id: string; type: string } | null } {
  return { data: id ? { id, type } : null };
}

export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

export function document(data: ResourceObject | ResourceObject[]): { data: ResourceObject | ResourceObject[] } {
  return { data };
}

/** Validates a request body against a schema; failures become 422 validation_failed. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
    throw new OutpostError('validation_failed', problems.join('; '), { problems });
  }
  return result.data;
}
