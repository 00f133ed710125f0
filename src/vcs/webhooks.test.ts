// Webhook deliveries as each forge sends them: verification (signatures,
// GitLab's token, a rotated secret) and the events they are read into.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { VcsProviderKind } from './providers.ts';
import { deliveryIdOf, parseWebhook, verifyWebhook, type IncomingWebhook } from './webhooks.ts';

const secret = 'current-secret';
const previous = 'previous-secret';
const before = '1'.repeat(40);
const after = '2'.repeat(40);
const zeros = '0'.repeat(40);

function hex(key: string, body: Buffer): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

function delivery(payload: unknown, headers: Record<string, string>): IncomingWebhook {
  return { body: Buffer.from(JSON.stringify(payload)), headers: { 'content-type': 'application/json', ...headers } };
}

/** A delivery signed the way `kind` signs, with `key`. */
function signed(kind: VcsProviderKind, key: string, payload: unknown, headers: Record<string, string>): IncomingWebhook {
  const hook = delivery(payload, headers);
  if (kind === 'github') hook.headers['x-hub-signature-256'] = `sha256=${hex(key, hook.body)}`;
  if (kind === 'gitea') hook.headers['x-gitea-signature'] = hex(key, hook.body);
  if (kind === 'bitbucket-dc') hook.headers['x-hub-signature'] = `sha256=${hex(key, hook.body)}`;
  if (kind === 'gitlab') hook.headers['x-gitlab-token'] = key;
  return hook;
}

const githubPushPayload = {
  ref: 'refs/heads/main',
  before,
  after,
  created: false,
  deleted: false,
  forced: false,
  head_commit: { id: after, message: 'Raise the instance size', url: 'https://github.com/acme/infra/commit/2222', author: { name: 'Ada', username: 'ada' } },
  commits: [
    { id: 'c1', added: ['network/vpc.tf'], modified: ['main.tf'], removed: [] },
    { id: after, added: [], modified: ['main.tf', 'compute/vm.tf'], removed: ['old.tf'] },
  ],
  repository: { full_name: 'acme/infra' },
  sender: { login: 'ada' },
};

describe('verifyWebhook', () => {
  const cases: [VcsProviderKind, string][] = [['github', 'X-Hub-Signature-256'], ['gitea', 'X-Gitea-Signature'], ['bitbucket-dc', 'X-Hub-Signature'], ['gitlab', 'X-Gitlab-Token']];
  for (const [kind, header] of cases) {
    it(`${kind}: accepts the current and the previous secret, refuses a missing or wrong ${header}`, () => {
      verifyWebhook(kind, [secret, previous], signed(kind, secret, { a: 1 }, {}));
      verifyWebhook(kind, [secret, previous], signed(kind, previous, { a: 1 }, {}));
      assert.throws(() => verifyWebhook(kind, [secret], delivery({ a: 1 }, {})), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'signature_missing');
        assert.match(error.message, new RegExp(header));
        return true;
      });
      assert.throws(() => verifyWebhook(kind, [secret], signed(kind, 'another-secret', { a: 1 }, {})), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'signature_invalid');
        assert.match(error.message, new RegExp(header));
        assert.ok(!error.message.includes(secret));
        return true;
      });
      assert.throws(() => verifyWebhook(kind, [], signed(kind, secret, { a: 1 }, {})), { code: 'signature_invalid' });
    });
  }

  it('refuses a body changed after signing, and a signature that is not hex', () => {
    const hook = signed('github', secret, { a: 1 }, {});
    assert.throws(() => verifyWebhook('github', [secret], { ...hook, body: Buffer.from('{"a":2}') }), { code: 'signature_invalid' });
    assert.throws(() => verifyWebhook('github', [secret], { ...hook, headers: { 'x-hub-signature-256': 'sha256=zz' } }), { code: 'signature_invalid' });
    assert.throws(() => verifyWebhook('github', [secret], { ...hook, headers: { 'x-hub-signature-256': hex(secret, hook.body) } }), { code: 'signature_invalid' });
  });

  it('gitea: accepts Forgejo\'s signature header and GitHub\'s', () => {
    const body = Buffer.from('{}');
    verifyWebhook('gitea', [secret], { body, headers: { 'x-forgejo-signature': hex(secret, body) } });
    verifyWebhook('gitea', [secret], { body, headers: { 'x-hub-signature-256': `sha256=${hex(secret, body)}` } });
  });

  it('has no webhooks for a plain git provider', () => {
    assert.throws(() => verifyWebhook('git', [secret], delivery({}, {})), { code: 'validation_failed' });
    assert.throws(() => parseWebhook('git', delivery({}, {})), { code: 'validation_failed' });
  });
});

describe('deliveryIdOf', () => {
  it('reads each forge\'s delivery id header', () => {
    assert.equal(deliveryIdOf('github', delivery({}, { 'x-github-delivery': 'g-1' })), 'g-1');
    assert.equal(deliveryIdOf('gitea', delivery({}, { 'x-gitea-delivery': 't-1' })), 't-1');
    assert.equal(deliveryIdOf('gitea', delivery({}, { 'x-forgejo-delivery': 'f-1' })), 'f-1');
    assert.equal(deliveryIdOf('gitlab', delivery({}, { 'x-gitlab-event-uuid': 'l-1', 'idempotency-key': 'l-key' })), 'l-key');
    assert.equal(deliveryIdOf('gitlab', delivery({}, { 'x-gitlab-event-uuid': 'l-1' })), 'l-1');
    assert.equal(deliveryIdOf('bitbucket-dc', delivery({}, { 'x-request-id': 'b-1' })), 'b-1');
    assert.equal(deliveryIdOf('github', { body: Buffer.alloc(0), headers: { 'x-github-delivery': ['g-2', 'g-3'] } }), 'g-2');
    assert.equal(deliveryIdOf('github', delivery({}, {})), null);
  });
});

describe('parseWebhook: GitHub', () => {
  it('reads a push with its head commit and the files its commits touched', () => {
    assert.deepEqual(parseWebhook('github', delivery(githubPushPayload, { 'x-github-event': 'push' })), {
      type: 'push',
      repository: 'acme/infra',
      ref: 'refs/heads/main',
      branch: 'main',
      tag: null,
      before,
      after,
      deleted: false,
      commit: { sha: after, message: 'Raise the instance size', author: 'ada', url: 'https://github.com/acme/infra/commit/2222' },
      changedFiles: ['network/vpc.tf', 'main.tf', 'compute/vm.tf', 'old.tf'],
      sender: 'ada',
    });
  });

  it('does not know the changed files of a truncated, new or force-pushed ref', () => {
    const many = { ...githubPushPayload, commits: Array.from({ length: 20 }, () => ({ added: [], modified: ['a.tf'], removed: [] })) };
    const read = (payload: unknown) => parseWebhook('github', delivery(payload, { 'x-github-event': 'push' }));
    assert.equal((read(many) as { changedFiles: unknown }).changedFiles, null);
    assert.equal((read({ ...githubPushPayload, created: true, before: zeros }) as { changedFiles: unknown }).changedFiles, null);
    assert.equal((read({ ...githubPushPayload, forced: true }) as { changedFiles: unknown }).changedFiles, null);
    assert.equal((read({ ...githubPushPayload, commits: [{ id: 'x', modified: ['a.tf'] }] }) as { changedFiles: unknown }).changedFiles, null);
    assert.equal((read({ ...githubPushPayload, commits: undefined }) as { changedFiles: unknown }).changedFiles, null);
  });

  it('reads a tag push and a deletion', () => {
    const tag = parseWebhook('github', delivery({ ...githubPushPayload, ref: 'refs/tags/v1.2', commits: [] }, { 'x-github-event': 'push' }));
    assert.equal(tag.type === 'push' && tag.tag, 'v1.2');
    assert.equal(tag.type === 'push' && tag.branch, null);
    const deleted = parseWebhook('github', delivery({ ...githubPushPayload, deleted: true, after: zeros, head_commit: null, commits: [] }, { 'x-github-event': 'push' }));
    assert.deepEqual(deleted.type === 'push' && [deleted.deleted, deleted.commit, deleted.changedFiles], [true, null, []]);
  });

  it('reads pull request actions: a new commit is an update, an edit is not', () => {
    const payload = (action: string) => ({
      action,
      number: 42,
      pull_request: { html_url: 'https://github.com/acme/infra/pull/42', title: 'Bigger VMs', user: { login: 'ada' }, head: { sha: after, ref: 'bigger' }, base: { ref: 'main' } },
      repository: { full_name: 'acme/infra' },
    });
    const read = (action: string) => parseWebhook('github', delivery(payload(action), { 'x-github-event': 'pull_request' }));
    assert.deepEqual(read('synchronize'), {
      type: 'pull_request', repository: 'acme/infra', action: 'updated', number: 42, headSha: after, headBranch: 'bigger', baseBranch: 'main',
      url: 'https://github.com/acme/infra/pull/42', title: 'Bigger VMs', author: 'ada',
    });
    const actions = ['opened', 'reopened', 'closed', 'edited', 'labeled'].map((action) => (read(action) as { action: string }).action);
    assert.deepEqual(actions, ['opened', 'opened', 'closed', 'other', 'other']);
  });

  it('reads ping, ignores other events, and refuses what it cannot read', () => {
    assert.deepEqual(parseWebhook('github', delivery({ zen: 'Keep it simple.' }, { 'x-github-event': 'ping' })), { type: 'ping' });
    assert.deepEqual(parseWebhook('github', delivery({}, { 'x-github-event': 'issues' })), { type: 'ignored', event: 'issues' });
    assert.throws(() => parseWebhook('github', delivery({}, {})), { code: 'invalid_request' });
    assert.throws(() => parseWebhook('github', delivery({ ...githubPushPayload, repository: {} }, { 'x-github-event': 'push' })), /repository\.full_name/);
    const form = { body: Buffer.from('payload=%7B%7D'), headers: { 'x-github-event': 'push', 'content-type': 'application/x-www-form-urlencoded' } };
    assert.throws(() => parseWebhook('github', form), /application\/json/);
    assert.throws(() => parseWebhook('github', { body: Buffer.from('{nope'), headers: { 'x-github-event': 'push' } }), { code: 'invalid_request' });
  });
});

describe('parseWebhook: Gitea and Forgejo', () => {
  it('reads a push whose commit list is shorter than the push', () => {
    const payload = { ...githubPushPayload, total_commits: 7, sender: { login: 'ada' } };
    const event = parseWebhook('gitea', delivery(payload, { 'x-gitea-event': 'push' }));
    assert.equal(event.type === 'push' && event.changedFiles, null);
    const whole = parseWebhook('gitea', delivery({ ...payload, total_commits: 2, created: undefined, deleted: undefined, forced: undefined }, { 'x-forgejo-event': 'push' }));
    assert.deepEqual(whole.type === 'push' && [whole.repository, whole.deleted, whole.changedFiles?.length], ['acme/infra', false, 4]);
  });

  it('reads a synchronized pull request, by the event or by the finer event type', () => {
    const payload = {
      action: 'synchronized',
      number: 3,
      pull_request: { number: 3, html_url: null, title: 'x', user: { login: 'ada' }, head: { sha: after, ref: 'f' }, base: { ref: 'main' } },
      repository: { full_name: 'acme/infra' },
    };
    const headerSets: Record<string, string>[] = [{ 'x-gitea-event': 'pull_request', 'x-gitea-event-type': 'pull_request_sync' }, { 'x-gitea-event-type': 'pull_request_sync' }];
    for (const headers of headerSets) {
      const event = parseWebhook('gitea', delivery(payload, headers));
      assert.equal(event.type === 'pull_request' && event.action, 'updated');
    }
    assert.deepEqual(parseWebhook('gitea', delivery({}, { 'x-gitea-event': 'issues' })), { type: 'ignored', event: 'issues' });
  });
});
