// The version control providers Outpost talks to, and how a repository's
// name becomes a clone URL, an API base or a link to a commit. Shared by the
// control plane and the VCS agent so both derive the same URLs.
import { OutpostError } from '../protocol/errors.ts';

export const vcsProviderKinds = ['github', 'gitlab', 'bitbucket-dc', 'gitea', 'git'] as const;
export type VcsProviderKind = (typeof vcsProviderKinds)[number];

export interface VcsEndpoint {
  kind: VcsProviderKind;
  /** Web/clone base URL, e.g. https://github.com, https://gitlab.example.com, https://gitea.internal:3000; for 'git' unused (the repository is a full URL). */
  url: string;
  /** API base override (GitHub Enterprise: https://ghe/api/v3); default derived from `url`. */
  apiUrl?: string | null;
}

export interface VcsCredentials {
  /** An access token: sent to git over HTTPS and to the provider's API. */
  token?: string;
  /** With a token, git sends Basic `username:token` instead of the provider's default form. */
  username?: string;
  /** A private key (OpenSSH or PEM) for ssh:// and scp-like remotes. */
  sshKey?: string;
  /** known_hosts lines for the SSH server; without them the host key is not verified. */
  knownHosts?: string;
}

const maxRepositoryLength = 255;
/** A path segment of an owner, group or repository name (GitHub's `.github` starts with a dot). */
const nameSegment = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/;
/** A Bitbucket project key; personal projects are `~USERNAME`. */
const bitbucketProjectKey = /^~?[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** scp-like remote: `user@host:path` (git's form without a scheme). */
const scpLikeRemote = /^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:(?!\/\/)[^\s]+$/;

function trimSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The provider's REST API base URL, without a trailing slash. */
export function apiBaseOf(endpoint: VcsEndpoint): string {
  if (endpoint.kind === 'git') throw new OutpostError('validation_failed', 'a plain git provider has no API');
  if (endpoint.apiUrl) return trimSlashes(endpoint.apiUrl);
  const base = trimSlashes(endpoint.url);
  switch (endpoint.kind) {
    case 'github': {
      const host = new URL(base).hostname.toLowerCase();
      return host === 'github.com' || host === 'www.github.com' ? 'https://api.github.com' : `${base}/api/v3`;
    }
    case 'gitlab':
      return `${base}/api/v4`;
    case 'gitea':
      return `${base}/api/v1`;
    case 'bitbucket-dc':
      return `${base}/rest`;
  }
}

/** The URL git clones `repository` from. Throws validation_failed for a name the provider cannot have. */
export function cloneUrlOf(endpoint: VcsEndpoint, repository: string): string {
  const problem = validateRepositoryName(endpoint.kind, repository);
  if (problem) throw new OutpostError('validation_failed', problem);
  const base = trimSlashes(endpoint.url);
  switch (endpoint.kind) {
    case 'github':
    case 'gitlab':
    case 'gitea':
      return `${base}/${repository}.git`;
    case 'bitbucket-dc': {
      const [project, slug] = repository.split('/') as [string, string];
      return `${base}/scm/${project}/${slug}.git`;
    }
    case 'git':
      return repository;
  }
}

/** A sentence saying what is wrong with a repository name for this kind of provider, or undefined when it is fine. */
export function validateRepositoryName(kind: VcsProviderKind, repository: string): string | undefined {
  if (repository.length === 0) return 'the repository is empty';
  if (repository.length > maxRepositoryLength) return `the repository is longer than ${maxRepositoryLength} characters`;
  if (/[\s\p{Cc}]/u.test(repository)) return 'the repository may not contain whitespace or control characters';
  if (repository.includes('..')) return 'the repository may not contain ".."';
  if (kind === 'git') return validateRemoteUrl(repository);
  if (/\.git\/?$/i.test(repository)) return 'name the repository without the ".git" suffix';
  const segments = repository.split('/');
  switch (kind) {
    case 'github':
    case 'gitea':
      if (segments.length !== 2 || !segments.every((segment) => nameSegment.test(segment))) {
        return 'the repository is "owner/name": letters, digits, ".", "-" and "_"';
      }
      return undefined;
    case 'gitlab':
      if (segments.length < 2 || !segments.every((segment) => nameSegment.test(segment))) {
        return 'the repository is "group/name" or "group/subgroup/…/name": letters, digits, ".", "-" and "_"';
      }
      return undefined;
    case 'bitbucket-dc':
      if (segments.length !== 2 || !bitbucketProjectKey.test(segments[0]!) || !nameSegment.test(segments[1]!)) {
        return 'the repository is "PROJECT/slug" (a personal repository: "~USER/slug")';
      }
      return undefined;
  }
}

/**
 * A sentence when `url` is not a remote a plain git provider may name:
 * https://, http://, ssh:// or scp-like user@host:path. Credentials belong
 * in the provider's credentials, never in the URL, where logs would show them.
 */
function validateRemoteUrl(url: string): string | undefined {
  const wanted = 'the repository is a full URL: https://, http://, ssh:// or user@host:path';
  if (url.startsWith('-')) return wanted;
  if (scpLikeRemote.test(url)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return wanted;
  }
  if (!['https:', 'http:', 'ssh:'].includes(parsed.protocol) || parsed.hostname === '') return wanted;
  if (parsed.password !== '' || (parsed.username !== '' && parsed.protocol !== 'ssh:')) {
    return 'the repository URL may not carry credentials: set them as the provider\'s credentials';
  }
  if (parsed.pathname === '/' || parsed.pathname === '') return 'the repository URL names no repository path';
  return undefined;
}

function normalizedRepository(kind: VcsProviderKind, repository: string): string {
  const trimmed = repository.trim().replace(/\/+$/, '').replace(/\.git$/i, '').replace(/\/+$/, '');
  if (kind !== 'git') return trimmed.toLowerCase();
  // Hosts are case-insensitive; a plain git server's paths may not be.
  try {
    const url = new URL(trimmed);
    return `${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host.toLowerCase()}${url.pathname}`;
  } catch {
    const at = trimmed.indexOf('@');
    const colon = trimmed.indexOf(':', at);
    return colon < 0 ? trimmed : `${trimmed.slice(0, colon).toLowerCase()}${trimmed.slice(colon)}`;
  }
}

/** Whether two spellings name the same repository (case, a trailing ".git" or "/" aside). */
export function sameRepository(kind: VcsProviderKind, a: string, b: string): boolean {
  return normalizedRepository(kind, a) === normalizedRepository(kind, b);
}

/** A link to the commit in the provider's web interface; null for a plain git provider, which has none. */
export function commitUrlOf(endpoint: VcsEndpoint, repository: string, sha: string): string | null {
  const base = trimSlashes(endpoint.url);
  switch (endpoint.kind) {
    case 'github':
    case 'gitea':
      return `${base}/${repository}/commit/${sha}`;
    case 'gitlab':
      return `${base}/${repository}/-/commit/${sha}`;
    case 'bitbucket-dc': {
      const [project = '', slug = ''] = repository.split('/');
      const owner = project.startsWith('~') ? `users/${project.slice(1)}` : `projects/${project}`;
      return `${base}/${owner}/repos/${slug}/commits/${sha}`;
    }
    case 'git':
      return null;
  }
}
