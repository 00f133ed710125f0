// The one event every forge's webhook is read into, and the helpers the
// per-forge readers share. Readers require only the fields Outpost uses and
// ignore the rest, so a forge adding fields never breaks them.
import type { z } from 'zod';
import { OutpostError } from '../protocol/errors.ts';

export interface IncomingWebhook {
  /** As Node gives them: lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface PushEvent {
  type: 'push';
  repository: string;
  ref: string;
  branch: string | null;
  tag: string | null;
  before: string | null;
  /** For an annotated tag, the tag object: `commit.sha` is the commit. */
  after: string;
  deleted: boolean;
  /** The head commit; null when the payload names none (a deletion, Bitbucket). Its message may be '' when the payload has only the sha. */
  commit: { sha: string; message: string; author: string; url: string | null } | null;
  /** Paths changed by the push; null = unknown (a truncated commit list, a new or force-pushed branch, Bitbucket). */
  changedFiles: string[] | null;
  sender: string | null;
}

export interface PullRequestEvent {
  type: 'pull_request';
  repository: string;
  /** `updated` only for new commits on the source branch; title or description edits are `other`. */
  action: 'opened' | 'updated' | 'closed' | 'other';
  number: number;
  headSha: string;
  headBranch: string;
  baseBranch: string;
  url: string | null;
  title: string;
  author: string | null;
}

export type VcsEvent = PushEvent | PullRequestEvent | { type: 'ping' } | { type: 'ignored'; event: string };

/** A header's (first) value. */
export function headerOf(hook: IncomingWebhook, name: string): string | undefined {
  const value = hook.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

/** The body as JSON; invalid_request when it is not JSON (a form-encoded GitHub hook, for one). */
export function jsonBody(hook: IncomingWebhook): unknown {
  const contentType = headerOf(hook, 'content-type');
  if (contentType !== undefined && !/json/i.test(contentType)) {
    throw new OutpostError('invalid_request', `the webhook delivery is ${contentType.split(';')[0]}: set the webhook's content type to application/json`);
  }
  try {
    return JSON.parse(hook.body.toString('utf8'));
  } catch {
    throw new OutpostError('invalid_request', 'the webhook delivery\'s body is not JSON: set the webhook\'s content type to application/json');
  }
}

/** The payload read with `schema`; invalid_request naming the first field that is missing or wrong. */
export function payloadOf<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : 'the body';
  throw new OutpostError('invalid_request', `the ${what} payload cannot be read: ${field}: ${issue?.message ?? 'invalid'}`);
}

export function isZeroSha(sha: string | null | undefined): boolean {
  return typeof sha === 'string' && /^0+$/.test(sha);
}

export function branchOf(ref: string): string | null {
  return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
}

export function tagOf(ref: string): string | null {
  return ref.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : null;
}

interface CommitFiles {
  added?: readonly string[] | null | undefined;
  modified?: readonly string[] | null | undefined;
  removed?: readonly string[] | null | undefined;
}

/** Every path the commits touch, in first-seen order; null when a commit has no file lists. */
export function filesOfCommits(commits: readonly CommitFiles[]): string[] | null {
  const files = new Set<string>();
  for (const commit of commits) {
    if (!Array.isArray(commit.added) || !Array.isArray(commit.modified) || !Array.isArray(commit.removed)) return null;
    for (const file of [...commit.added, ...commit.modified, ...commit.removed]) files.add(file);
  }
  return [...files];
}
