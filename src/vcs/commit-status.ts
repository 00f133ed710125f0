// What Outpost tells a forge about a commit (a status per workspace, shown
// beside the commit and on pull requests) and what it asks of it (whether
// the repository is reachable with the credentials, its default branch).
import { z } from 'zod';
import { OutpostError } from '../protocol/errors.ts';
import { apiRequest, defaultApiTimeoutMs, jsonOf, type ApiOptions } from './forge-api.ts';
import { listRemoteRefs } from './git.ts';
import { apiBaseOf, cloneUrlOf, validateRepositoryName, type VcsCredentials, type VcsEndpoint } from './providers.ts';

export type { ApiOptions } from './forge-api.ts';

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

export interface CommitStatus {
  state: CommitState;
  /** `outpost/<workspace>`: one status per workspace on the same commit. */
  context: string;
  /** Truncated to 140 characters, GitHub's limit. */
  description: string;
  targetUrl: string;
}

export interface RepositoryInfo {
  defaultBranch: string | null;
  /** null when the provider does not say (a plain git server). */
  private: boolean | null;
}

const maxDescriptionLength = 140;
const gitlabStates: Record<CommitState, string> = { pending: 'pending', success: 'success', failure: 'failed', error: 'failed' };
const bitbucketStates: Record<CommitState, string> = { pending: 'INPROGRESS', success: 'SUCCESSFUL', failure: 'FAILED', error: 'FAILED' };

function truncated(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function checkRepository(endpoint: VcsEndpoint, repository: string): void {
  const problem = validateRepositoryName(endpoint.kind, repository);
  if (problem) throw new OutpostError('validation_failed', problem);
}

/** `owner/name` as two path segments of a URL. */
function ownerAndName(repository: string): string {
  return repository.split('/').map(encodeURIComponent).join('/');
}

/** Bitbucket's `projects/KEY/repos/slug` path. */
function bitbucketRepositoryPath(repository: string): string {
  const [project = '', slug = ''] = repository.split('/');
  return `projects/${encodeURIComponent(project)}/repos/${encodeURIComponent(slug)}`;
}

export async function postCommitStatus(
  endpoint: VcsEndpoint,
  credentials: VcsCredentials,
  repository: string,
  sha: string,
  status: CommitStatus,
  options: ApiOptions = {},
): Promise<void> {
  if (endpoint.kind === 'git') throw new OutpostError('validation_failed', 'a plain git provider has no API: commit statuses are not posted');
  checkRepository(endpoint, repository);
  if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/i.test(sha)) throw new OutpostError('validation_failed', `"${sha.slice(0, 80)}" is not a commit sha`);
  const api = apiBaseOf(endpoint);
  const description = truncated(status.description, maxDescriptionLength);
  const common = { kind: endpoint.kind, credentials, method: 'POST' } as const;
  switch (endpoint.kind) {
    case 'github':
    case 'gitea':
      await apiRequest(
        {
          ...common,
          url: `${api}/repos/${ownerAndName(repository)}/statuses/${sha}`,
          body: { state: status.state, target_url: status.targetUrl, description, context: status.context },
        },
        options,
      );
      return;
    case 'gitlab':
      await apiRequest(
        {
          ...common,
          url: `${api}/projects/${encodeURIComponent(repository)}/statuses/${sha}`,
          body: { state: gitlabStates[status.state], name: status.context, target_url: status.targetUrl, description },
          // GitLab refuses to set the state a status already has ("Cannot
          // transition status via :enqueue from :pending"): a repeated post
          // has nothing to change, which is what the caller wanted.
          accept: (code, text) => code === 400 && text.includes('Cannot transition status'),
        },
        options,
      );
      return;
    case 'bitbucket-dc':
      await apiRequest(
        {
          ...common,
          url: `${api}/build-status/1.0/commits/${sha}`,
          body: { state: bitbucketStates[status.state], key: status.context, name: status.context, url: status.targetUrl, description },
        },
        options,
      );
      return;
  }
}

const githubRepository = z.object({ default_branch: z.string().nullish(), private: z.boolean().nullish() });
const gitlabProject = z.object({ default_branch: z.string().nullish(), visibility: z.string().nullish() });
const bitbucketRepository = z.object({ public: z.boolean().nullish() });
const bitbucketBranch = z.object({ displayId: z.string().nullish() });

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new OutpostError('vcs_api_failed', `the provider's answer about ${what} is not in the expected form`);
  return result.data;
}

/** Reads the repository with the credentials: it throws when they cannot see it, which is how access is verified. */
export async function readRepository(endpoint: VcsEndpoint, credentials: VcsCredentials, repository: string, options: ApiOptions = {}): Promise<RepositoryInfo> {
  checkRepository(endpoint, repository);
  if (endpoint.kind === 'git') {
    const timeoutMs = options.timeoutMs ?? defaultApiTimeoutMs;
    const refs = await listRemoteRefs({ url: cloneUrlOf(endpoint, repository), credentials, kind: 'git' }, { ...options, timeoutMs });
    return { defaultBranch: refs.head, private: null };
  }
  const api = apiBaseOf(endpoint);
  const get = (url: string, accept?: (status: number) => boolean) => apiRequest({ kind: endpoint.kind, credentials, method: 'GET', url, accept }, options);
  switch (endpoint.kind) {
    case 'github':
    case 'gitea': {
      const answer = parsed(githubRepository, jsonOf(await get(`${api}/repos/${ownerAndName(repository)}`), endpoint.kind), repository);
      return { defaultBranch: answer.default_branch || null, private: answer.private ?? null };
    }
    case 'gitlab': {
      const answer = parsed(gitlabProject, jsonOf(await get(`${api}/projects/${encodeURIComponent(repository)}`), endpoint.kind), repository);
      // "internal" projects need a login as much as private ones do.
      return { defaultBranch: answer.default_branch || null, private: answer.visibility ? answer.visibility !== 'public' : null };
    }
    case 'bitbucket-dc': {
      const base = `${api}/api/latest/${bitbucketRepositoryPath(repository)}`;
      const answer = parsed(bitbucketRepository, jsonOf(await get(base), endpoint.kind), repository);
      return { defaultBranch: await bitbucketDefaultBranch(base, get), private: typeof answer.public === 'boolean' ? !answer.public : null };
    }
  }
}

/**
 * `/default-branch` on Bitbucket 7.5 and later, `/branches/default` before
 * it; an empty repository has none (404 or 204 on either).
 */
async function bitbucketDefaultBranch(base: string, get: (url: string, accept?: (status: number) => boolean) => Promise<{ status: number; text: string }>): Promise<string | null> {
  for (const path of ['default-branch', 'branches/default']) {
    const answer = await get(`${base}/${path}`, (status) => status === 404);
    if (answer.status === 404) continue;
    if (answer.status === 204 || answer.text.trim() === '') return null;
    return parsed(bitbucketBranch, jsonOf(answer, 'bitbucket-dc'), 'the default branch').displayId || null;
  }
  return null;
}
