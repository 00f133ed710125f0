// A forge's webhook delivery: is it really from the forge (its signature or
// token), which delivery is it (for deduplication), and what happened, read
// into one VcsEvent whatever the forge.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { OutpostError } from '../protocol/errors.ts';
import type { VcsProviderKind } from './providers.ts';
import { bitbucketEvent } from './webhook-bitbucket.ts';
import { headerOf, jsonBody, type IncomingWebhook, type VcsEvent } from './webhook-event.ts';
import { giteaEventName, githubPullRequest, githubPush } from './webhook-github.ts';
import { gitlabEvent } from './webhook-gitlab.ts';

export type { IncomingWebhook, PullRequestEvent, PushEvent, VcsEvent } from './webhook-event.ts';

function noWebhooks(): OutpostError {
  return new OutpostError('validation_failed', 'a plain git provider sends no webhooks');
}

/** The hex HMAC-SHA256 in `value` (bare or after `sha256=`), or null when it is not one. */
function hexDigestOf(value: string, prefix: 'sha256=' | ''): Buffer | null {
  const digest = prefix && value.toLowerCase().startsWith(prefix) ? value.slice(prefix.length) : prefix ? null : value;
  return digest !== null && /^[0-9a-f]{64}$/i.test(digest.trim()) ? Buffer.from(digest.trim(), 'hex') : null;
}

function signedByOneOf(secrets: readonly string[], body: Buffer, offered: readonly Buffer[]): boolean {
  let matched = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    for (const candidate of offered) if (timingSafeEqual(candidate, expected)) matched = true;
  }
  return matched;
}

/** Constant-time equality of two strings of any length (hashed first, so the length does not show either). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** Signature headers per forge: the header name and whether its value is `sha256=<hex>` or bare hex. */
const signatureHeaders: Record<'github' | 'gitea' | 'bitbucket-dc', { header: string; prefix: 'sha256=' | '' }[]> = {
  github: [{ header: 'x-hub-signature-256', prefix: 'sha256=' }],
  // Gitea signs with X-Gitea-Signature, Forgejo with X-Forgejo-Signature; both also send GitHub's header.
  gitea: [
    { header: 'x-gitea-signature', prefix: '' },
    { header: 'x-forgejo-signature', prefix: '' },
    { header: 'x-hub-signature-256', prefix: 'sha256=' },
  ],
  'bitbucket-dc': [{ header: 'x-hub-signature', prefix: 'sha256=' }],
};

const headerNames: Record<string, string> = {
  'x-hub-signature-256': 'X-Hub-Signature-256',
  'x-gitea-signature': 'X-Gitea-Signature',
  'x-forgejo-signature': 'X-Forgejo-Signature',
  'x-hub-signature': 'X-Hub-Signature',
};

/**
 * Throws unless the delivery is signed (GitLab: carries the token) with one
 * of `secrets`: the current secret and, while it is being rotated, the
 * previous one. signature_missing when there is no signature at all,
 * signature_invalid when it does not match; the message names the header.
 */
export function verifyWebhook(kind: VcsProviderKind, secrets: readonly string[], hook: IncomingWebhook): void {
  if (kind === 'git') throw noWebhooks();
  const usable = secrets.filter((secret) => secret.length > 0);
  if (kind === 'gitlab') {
    const token = headerOf(hook, 'x-gitlab-token');
    if (token === undefined) throw new OutpostError('signature_missing', 'the delivery has no X-Gitlab-Token header: set the webhook\'s secret token in GitLab');
    if (!usable.some((secret) => sameSecret(secret, token))) {
      throw new OutpostError('signature_invalid', 'X-Gitlab-Token does not match the webhook secret: the secret token set in GitLab differs');
    }
    return;
  }
  const headers = signatureHeaders[kind];
  const present = headers.filter(({ header }) => headerOf(hook, header) !== undefined);
  const names = headers.map(({ header }) => headerNames[header]).join(' or ');
  if (present.length === 0) throw new OutpostError('signature_missing', `the delivery has no ${names} header: set a secret on the webhook`);
  const offered = present.flatMap(({ header, prefix }) => {
    const digest = hexDigestOf(headerOf(hook, header)!, prefix);
    return digest ? [digest] : [];
  });
  if (!signedByOneOf(usable, hook.body, offered)) {
    const used = present.map(({ header }) => headerNames[header]).join(', ');
    throw new OutpostError('signature_invalid', `${used} does not match the body signed with the webhook secret: the secret set on the webhook differs, or the body was changed`);
  }
}

/** The forge's id of this delivery (the same on a redelivery), for deduplication; null when it sends none. */
export function deliveryIdOf(kind: VcsProviderKind, hook: IncomingWebhook): string | null {
  const first = (...names: string[]) => names.map((name) => headerOf(hook, name)).find((value) => value !== undefined) ?? null;
  switch (kind) {
    case 'github':
      return first('x-github-delivery');
    case 'gitea':
      return first('x-gitea-delivery', 'x-forgejo-delivery', 'x-github-delivery');
    case 'gitlab':
      // Idempotency-Key stays the same when GitLab retries; the event UUID is for older GitLab.
      return first('idempotency-key', 'x-gitlab-event-uuid');
    case 'bitbucket-dc':
      return first('x-request-id');
    case 'git':
      return null;
  }
}

/** Reads a verified delivery. invalid_request when the body is not JSON or lacks a field the event needs. */
export function parseWebhook(kind: VcsProviderKind, hook: IncomingWebhook): VcsEvent {
  switch (kind) {
    case 'github': {
      const event = headerOf(hook, 'x-github-event');
      if (event === undefined) throw missingEventHeader('X-GitHub-Event');
      return githubStyleEvent(event, hook);
    }
    case 'gitea': {
      const event = giteaEventName(
        headerOf(hook, 'x-gitea-event') ?? headerOf(hook, 'x-forgejo-event'),
        headerOf(hook, 'x-gitea-event-type') ?? headerOf(hook, 'x-forgejo-event-type'),
      );
      if (event === undefined) throw missingEventHeader('X-Gitea-Event');
      return githubStyleEvent(event, hook);
    }
    case 'gitlab': {
      const event = headerOf(hook, 'x-gitlab-event');
      if (event === undefined) throw missingEventHeader('X-Gitlab-Event');
      return gitlabEvent(event, jsonBody(hook));
    }
    case 'bitbucket-dc': {
      const event = headerOf(hook, 'x-event-key');
      if (event === undefined) throw missingEventHeader('X-Event-Key');
      return bitbucketEvent(event, jsonBody(hook));
    }
    case 'git':
      throw noWebhooks();
  }
}

function missingEventHeader(header: string): OutpostError {
  return new OutpostError('invalid_request', `the delivery has no ${header} header: it does not come from this kind of provider`);
}

function githubStyleEvent(event: string, hook: IncomingWebhook): VcsEvent {
  switch (event) {
    case 'ping':
      return { type: 'ping' };
    case 'push':
      return githubPush(jsonBody(hook));
    case 'pull_request':
      return githubPullRequest(jsonBody(hook));
    default:
      return { type: 'ignored', event };
  }
}
