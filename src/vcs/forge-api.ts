// One request to a forge's REST API (GitHub, GitLab, Gitea, Bitbucket Data
// Center): each provider's authentication header, a deadline, redirects
// followed only within the API's own origin (a token header must not travel
// to another host), and failures as vcs_api_failed with a short answer
// excerpt from which the token has been removed.
import { OutpostError } from '../protocol/errors.ts';
import type { VcsCredentials, VcsProviderKind } from './providers.ts';

export interface ApiOptions {
  signal?: AbortSignal;
  /** Default 15 s, for the request and its answer together. */
  timeoutMs?: number;
}

export interface ApiAnswer {
  status: number;
  text: string;
}

export const defaultApiTimeoutMs = 15_000;
const maxRedirects = 3;
const excerptLength = 300;

const providerNames: Record<VcsProviderKind, string> = {
  github: 'GitHub',
  gitlab: 'GitLab',
  gitea: 'Gitea',
  'bitbucket-dc': 'Bitbucket',
  git: 'the git server',
};

function headersOf(kind: VcsProviderKind, credentials: VcsCredentials, hasBody: boolean): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': 'outpost', accept: 'application/json' };
  if (hasBody) headers['content-type'] = 'application/json';
  const token = credentials.token;
  switch (kind) {
    case 'github':
      headers.accept = 'application/vnd.github+json';
      headers['x-github-api-version'] = '2022-11-28';
      if (token) headers.authorization = `Bearer ${token}`;
      break;
    case 'gitea':
      if (token) headers.authorization = `token ${token}`;
      break;
    case 'gitlab':
      if (token) headers['private-token'] = token;
      break;
    case 'bitbucket-dc':
    case 'git':
      if (token) headers.authorization = `Bearer ${token}`;
      break;
  }
  return headers;
}

function scrubAnswer(text: string, credentials: VcsCredentials): string {
  let scrubbed = text;
  if (credentials.token && credentials.token.length >= 4) scrubbed = scrubbed.replaceAll(credentials.token, '***');
  return scrubbed;
}

/** The provider's own words when its answer is JSON with a message, else the start of the text; one line, at most 300 characters. */
function excerptOf(text: string, credentials: VcsCredentials): string {
  let excerpt = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown; errors?: { message?: unknown }[] };
    const messages = [parsed.message, ...(Array.isArray(parsed.errors) ? parsed.errors.map((error) => error?.message) : [])];
    // GitLab's message may be an object: {"name": ["has already been taken"]}.
    const words = messages.flatMap((message) => (typeof message === 'string' ? [message] : typeof message === 'object' && message !== null ? [JSON.stringify(message)] : []));
    if (words.length > 0) excerpt = words.join('; ');
  } catch {
    // Not JSON: the text itself.
  }
  const oneLine = scrubAnswer(excerpt, credentials).replace(/\s+/g, ' ').trim();
  return oneLine.length > excerptLength ? `${oneLine.slice(0, excerptLength - 1)}…` : oneLine;
}

function hintOf(status: number): string {
  if (status === 401) return ': the token is missing, expired or not valid';
  if (status === 403) return ': the token may not do this (check its scopes and its access to the repository)';
  if (status === 404) return ': not found, or the token cannot see the repository';
  return '';
}

export interface ApiRequest {
  kind: VcsProviderKind;
  credentials: VcsCredentials;
  method: 'GET' | 'POST';
  url: string;
  body?: unknown;
  /** Answers that are not failures though not 2xx (e.g. 404 for an optional resource). */
  accept?: (status: number, text: string) => boolean;
}

/** Sends the request; a 2xx answer (or one `accept` takes) is returned, anything else throws vcs_api_failed. */
export async function apiRequest(request: ApiRequest, options: ApiOptions = {}): Promise<ApiAnswer> {
  const timeoutMs = options.timeoutMs ?? defaultApiTimeoutMs;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const provider = providerNames[request.kind];
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  const headers = headersOf(request.kind, request.credentials, body !== undefined);
  let url = new URL(request.url);
  const origin = url.origin;
  const what = () => `${request.method} ${url.pathname}`;
  try {
    for (let redirects = 0; ; redirects += 1) {
      const response = await fetch(url, { method: request.method, headers, body, signal, redirect: 'manual' });
      const text = await response.text();
      if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
        const target = new URL(response.headers.get('location')!, url);
        if (target.origin !== origin) {
          throw new OutpostError('vcs_api_failed', `${provider} redirected ${what()} to another host (${target.host}); the token is not sent there: check the provider's URL`);
        }
        if (redirects >= maxRedirects) throw new OutpostError('vcs_api_failed', `${provider} redirected ${what()} more than ${maxRedirects} times`);
        url = target;
        continue;
      }
      if ((response.status >= 200 && response.status < 300) || request.accept?.(response.status, text)) return { status: response.status, text };
      const excerpt = excerptOf(text, request.credentials);
      throw new OutpostError('vcs_api_failed', `${provider} answered ${response.status} to ${what()}${hintOf(response.status)}${excerpt ? ` — ${excerpt}` : ''}`);
    }
  } catch (error) {
    if (error instanceof OutpostError) throw error;
    if (options.signal?.aborted) throw options.signal.reason;
    if (deadline.aborted) throw new OutpostError('vcs_api_failed', `${provider} at ${url.host} did not answer ${what()} within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`);
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = scrubAnswer(cause?.code ?? cause?.message ?? (error as Error).message, request.credentials);
    throw new OutpostError('vcs_api_failed', `${provider} at ${url.host} could not be reached for ${what()}: ${reason}`);
  }
}

/** The answer as JSON; vcs_api_failed when it is not. */
export function jsonOf(answer: ApiAnswer, kind: VcsProviderKind): unknown {
  try {
    return JSON.parse(answer.text);
  } catch {
    throw new OutpostError('vcs_api_failed', `${providerNames[kind]} answered ${answer.status} with a body that is not JSON`);
  }
}
