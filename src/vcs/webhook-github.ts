// GitHub's webhook payloads, and Gitea's and Forgejo's, which copy GitHub's
// shape for push and pull_request (with their own action names).
import { z } from 'zod';
import { OutpostError } from '../protocol/errors.ts';
import {
  branchOf,
  filesOfCommits,
  isZeroSha,
  payloadOf,
  tagOf,
  type PullRequestEvent,
  type PushEvent,
} from './webhook-event.ts';

/**
 * GitHub lists at most 20 commits in a push (with their files); beyond that
 * the list says nothing about the files of the commits left out.
 */
const githubCommitListLimit = 20;

const person = z.object({ login: z.string().nullish(), username: z.string().nullish() }).nullish();
const fileList = z.array(z.string()).nullish();

const pushPayload = z.object({
  ref: z.string(),
  before: z.string().nullish(),
  after: z.string(),
  created: z.boolean().nullish(),
  deleted: z.boolean().nullish(),
  forced: z.boolean().nullish(),
  head_commit: z
    .object({
      id: z.string(),
      message: z.string().nullish(),
      url: z.string().nullish(),
      author: z.object({ name: z.string().nullish(), username: z.string().nullish() }).nullish(),
    })
    .nullish(),
  commits: z.array(z.object({ added: fileList, modified: fileList, removed: fileList })).nullish(),
  /** Gitea: how many commits the push had, when `commits` lists fewer. */
  total_commits: z.number().nullish(),
  repository: z.object({ full_name: z.string() }),
  sender: person,
});

const pullRequestPayload = z.object({
  action: z.string(),
  number: z.number().int().nullish(),
  pull_request: z.object({
    number: z.number().int().nullish(),
    html_url: z.string().nullish(),
    title: z.string(),
    user: person,
    head: z.object({ sha: z.string(), ref: z.string() }),
    base: z.object({ ref: z.string() }),
  }),
  repository: z.object({ full_name: z.string() }),
});

/** GitHub's and Gitea's action names; Gitea says `synchronized` where GitHub says `synchronize`. */
const pullRequestActions: Record<string, PullRequestEvent['action']> = {
  opened: 'opened',
  reopened: 'opened',
  synchronize: 'updated',
  synchronized: 'updated',
  closed: 'closed',
};

export function githubPush(body: unknown): PushEvent {
  const payload = payloadOf(pushPayload, body, 'push');
  const deleted = payload.deleted ?? isZeroSha(payload.after);
  const head = payload.head_commit;
  return {
    type: 'push',
    repository: payload.repository.full_name,
    ref: payload.ref,
    branch: branchOf(payload.ref),
    tag: tagOf(payload.ref),
    before: payload.before ?? null,
    after: payload.after,
    deleted,
    commit: head && !deleted ? { sha: head.id, message: head.message ?? '', author: head.author?.username || head.author?.name || '', url: head.url ?? null } : null,
    changedFiles: pushedFiles(payload, deleted),
    sender: payload.sender?.login || payload.sender?.username || null,
  };
}

/**
 * The files a push changed, or null when the payload cannot tell: a
 * truncated commit list, or a new or force-pushed ref, whose commit list
 * is not the difference from what the workspace last saw.
 */
function pushedFiles(payload: z.infer<typeof pushPayload>, deleted: boolean): string[] | null {
  if (deleted) return [];
  if (payload.created || payload.forced || isZeroSha(payload.before)) return null;
  const commits = payload.commits;
  if (!commits) return null;
  if (commits.length >= githubCommitListLimit) return null;
  if (typeof payload.total_commits === 'number' && payload.total_commits > commits.length) return null;
  return filesOfCommits(commits);
}

export function githubPullRequest(body: unknown): PullRequestEvent {
  const payload = payloadOf(pullRequestPayload, body, 'pull request');
  const pull = payload.pull_request;
  const number = payload.number ?? pull.number;
  if (typeof number !== 'number') throw new OutpostError('invalid_request', 'the pull request payload cannot be read: number: missing');
  return {
    type: 'pull_request',
    repository: payload.repository.full_name,
    action: pullRequestActions[payload.action] ?? 'other',
    number,
    headSha: pull.head.sha,
    headBranch: pull.head.ref,
    baseBranch: pull.base.ref,
    url: pull.html_url ?? null,
    title: pull.title,
    author: pull.user?.login || pull.user?.username || null,
  };
}

/** Gitea's finer event types (`X-Gitea-Event-Type`) that are pull requests. */
const giteaPullRequestTypes = new Set(['pull_request', 'pull_request_sync', 'pull_request_assign', 'pull_request_label', 'pull_request_milestone', 'pull_request_review_request']);

/** Gitea's event name: `X-Gitea-Event` (or Forgejo's), else derived from the finer `-Event-Type`. */
export function giteaEventName(event: string | undefined, eventType: string | undefined): string | undefined {
  if (event) return event;
  if (eventType && giteaPullRequestTypes.has(eventType)) return 'pull_request';
  return eventType;
}
