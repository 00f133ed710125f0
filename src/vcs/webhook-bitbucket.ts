// Bitbucket Data Center's webhook payloads, told apart by `X-Event-Key`.
import { z } from 'zod';
import { branchOf, payloadOf, tagOf, type PullRequestEvent, type PushEvent, type VcsEvent } from './webhook-event.ts';

const repository = z.object({ slug: z.string(), project: z.object({ key: z.string() }) });

const refsChangedPayload = z.object({
  actor: z.object({ name: z.string().nullish() }).nullish(),
  repository,
  changes: z
    .array(
      z.object({
        ref: z.object({ id: z.string(), displayId: z.string().nullish(), type: z.string().nullish() }),
        fromHash: z.string(),
        toHash: z.string(),
        type: z.string(),
      }),
    )
    .min(1),
});

const pullRequestPayload = z.object({
  pullRequest: z.object({
    id: z.number().int(),
    title: z.string(),
    fromRef: z.object({ latestCommit: z.string(), displayId: z.string() }),
    toRef: z.object({ displayId: z.string(), repository }),
    links: z.object({ self: z.array(z.object({ href: z.string() })).nullish() }).nullish(),
    author: z.object({ user: z.object({ name: z.string().nullish() }).nullish() }).nullish(),
  }),
});

const pullRequestActions: Record<string, PullRequestEvent['action']> = {
  'pr:opened': 'opened',
  'pr:from_ref_updated': 'updated',
  'pr:merged': 'closed',
  'pr:declined': 'closed',
  'pr:deleted': 'closed',
};

function repositoryName(value: z.infer<typeof repository>): string {
  return `${value.project.key}/${value.slug}`;
}

export function bitbucketEvent(eventKey: string, body: unknown): VcsEvent {
  if (eventKey === 'diagnostics:ping') return { type: 'ping' };
  if (eventKey === 'repo:refs_changed') return refsChanged(body);
  if (eventKey.startsWith('pr:')) return pullRequest(eventKey, body);
  return { type: 'ignored', event: eventKey };
}

/**
 * One push event for the delivery's first change: a push of several refs at
 * once is rare for a workspace's repository, and the event has one ref.
 * Bitbucket sends neither the commit's details nor the files changed, so
 * `commit` and `changedFiles` are null: the commit is fetched, and its
 * changes are unknown, which runs rather than skips.
 */
function refsChanged(body: unknown): PushEvent {
  const payload = payloadOf(refsChangedPayload, body, 'refs changed');
  const change = payload.changes[0]!;
  const ref = change.ref.id;
  return {
    type: 'push',
    repository: repositoryName(payload.repository),
    ref,
    branch: change.ref.type === 'TAG' ? null : branchOf(ref),
    tag: change.ref.type === 'BRANCH' ? null : tagOf(ref),
    before: change.fromHash,
    after: change.toHash,
    deleted: change.type === 'DELETE',
    commit: null,
    changedFiles: null,
    sender: payload.actor?.name ?? null,
  };
}

function pullRequest(eventKey: string, body: unknown): PullRequestEvent {
  const pull = payloadOf(pullRequestPayload, body, 'pull request').pullRequest;
  return {
    type: 'pull_request',
    repository: repositoryName(pull.toRef.repository),
    action: pullRequestActions[eventKey] ?? 'other',
    number: pull.id,
    headSha: pull.fromRef.latestCommit,
    headBranch: pull.fromRef.displayId,
    baseBranch: pull.toRef.displayId,
    url: pull.links?.self?.[0]?.href ?? null,
    title: pull.title,
    author: pull.author?.user?.name ?? null,
  };
}
