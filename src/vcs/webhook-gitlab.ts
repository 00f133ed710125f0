// GitLab's webhook payloads: Push Hook, Tag Push Hook and Merge Request
// Hook, and the same events arriving as a System Hook.
import { z } from 'zod';
import { branchOf, filesOfCommits, isZeroSha, payloadOf, tagOf, type PullRequestEvent, type PushEvent, type VcsEvent } from './webhook-event.ts';

const fileList = z.array(z.string()).nullish();

const pushPayload = z.object({
  ref: z.string(),
  before: z.string().nullish(),
  after: z.string(),
  /** The commit the ref points at; for an annotated tag, the commit rather than the tag object. Null on deletion. */
  checkout_sha: z.string().nullish(),
  commits: z
    .array(
      z.object({
        id: z.string(),
        message: z.string().nullish(),
        url: z.string().nullish(),
        author: z.object({ name: z.string().nullish() }).nullish(),
        added: fileList,
        modified: fileList,
        removed: fileList,
      }),
    )
    .nullish(),
  /** GitLab lists at most 20 commits; this is how many the push had. */
  total_commits_count: z.number().nullish(),
  project: z.object({ path_with_namespace: z.string() }),
  user_username: z.string().nullish(),
});

const mergeRequestPayload = z.object({
  user: z.object({ username: z.string().nullish() }).nullish(),
  project: z.object({ path_with_namespace: z.string() }),
  object_attributes: z.object({
    iid: z.number().int(),
    action: z.string().nullish(),
    last_commit: z.object({ id: z.string() }),
    source_branch: z.string(),
    target_branch: z.string(),
    url: z.string().nullish(),
    title: z.string(),
    /** Present on `update` only when the update pushed new commits. */
    oldrev: z.string().nullish(),
  }),
});

const objectKind = z.object({ object_kind: z.string().nullish(), event_name: z.string().nullish() });

/** Reads a delivery by its `X-Gitlab-Event` header. */
export function gitlabEvent(event: string, body: unknown): VcsEvent {
  switch (event) {
    case 'Push Hook':
    case 'Tag Push Hook':
      return gitlabPush(body);
    case 'Merge Request Hook':
      return gitlabMergeRequest(body);
    case 'System Hook': {
      // A system hook carries the same payloads, told apart by their kind.
      const kind = payloadOf(objectKind, body, 'system hook');
      const name = kind.object_kind ?? kind.event_name ?? '';
      if (name === 'push' || name === 'tag_push') return gitlabPush(body);
      if (name === 'merge_request') return gitlabMergeRequest(body);
      return { type: 'ignored', event: `System Hook ${name}`.trim() };
    }
    default:
      return { type: 'ignored', event };
  }
}

function gitlabPush(body: unknown): PushEvent {
  const payload = payloadOf(pushPayload, body, 'push');
  const deleted = isZeroSha(payload.after);
  const headSha = payload.checkout_sha ?? (deleted ? null : payload.after);
  const head = payload.commits?.find((commit) => commit.id === headSha);
  let commit: PushEvent['commit'] = null;
  if (head) commit = { sha: head.id, message: head.message ?? '', author: head.author?.name ?? '', url: head.url ?? null };
  else if (headSha && !deleted) commit = { sha: headSha, message: '', author: '', url: null };
  return {
    type: 'push',
    repository: payload.project.path_with_namespace,
    ref: payload.ref,
    branch: branchOf(payload.ref),
    tag: tagOf(payload.ref),
    before: payload.before ?? null,
    after: payload.after,
    deleted,
    commit,
    changedFiles: pushedFiles(payload, deleted),
    sender: payload.user_username ?? null,
  };
}

/** The files a push changed; null when the list is truncated or the ref is new (its commits are not a difference from anything seen). */
function pushedFiles(payload: z.infer<typeof pushPayload>, deleted: boolean): string[] | null {
  if (deleted) return [];
  const commits = payload.commits;
  if (!commits || isZeroSha(payload.before)) return null;
  if (typeof payload.total_commits_count === 'number' && payload.total_commits_count > commits.length) return null;
  return filesOfCommits(commits);
}

function gitlabMergeRequest(body: unknown): PullRequestEvent {
  const payload = payloadOf(mergeRequestPayload, body, 'merge request');
  const attributes = payload.object_attributes;
  return {
    type: 'pull_request',
    repository: payload.project.path_with_namespace,
    action: mergeRequestAction(attributes.action, attributes.oldrev),
    number: attributes.iid,
    headSha: attributes.last_commit.id,
    headBranch: attributes.source_branch,
    baseBranch: attributes.target_branch,
    url: attributes.url ?? null,
    title: attributes.title,
    author: payload.user?.username ?? null,
  };
}

function mergeRequestAction(action: string | null | undefined, oldrev: string | null | undefined): PullRequestEvent['action'] {
  switch (action) {
    case 'open':
    case 'reopen':
      return 'opened';
    case 'update':
      // Without oldrev the title, description or labels changed, not the code.
      return oldrev ? 'updated' : 'other';
    case 'close':
    case 'merge':
      return 'closed';
    default:
      return 'other';
  }
}
