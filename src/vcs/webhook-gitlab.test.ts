// GitLab deliveries read through parseWebhook: pushes, tag pushes, merge
// requests, and the same events as a system hook.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWebhook, type IncomingWebhook } from './webhooks.ts';

const before = '1'.repeat(40);
const after = '2'.repeat(40);
const zeros = '0'.repeat(40);

function delivery(event: string, payload: unknown): IncomingWebhook {
  return { body: Buffer.from(JSON.stringify(payload)), headers: { 'content-type': 'application/json', 'x-gitlab-event': event } };
}

const pushPayload = {
  object_kind: 'push',
  ref: 'refs/heads/main',
  before,
  after,
  checkout_sha: after,
  user_username: 'ada',
  project: { path_with_namespace: 'platform/infra/network' },
  commits: [
    { id: 'c1', message: 'first', url: 'https://gitlab.example.com/c1', author: { name: 'Ada' }, added: ['a.tf'], modified: [], removed: [] },
    { id: after, message: 'second\n', url: 'https://gitlab.example.com/c2', author: { name: 'Ada' }, added: [], modified: ['b.tf'], removed: ['a.tf'] },
  ],
  total_commits_count: 2,
};

describe('parseWebhook: GitLab', () => {
  it('reads a push with its head commit and changed files', () => {
    assert.deepEqual(parseWebhook('gitlab', delivery('Push Hook', pushPayload)), {
      type: 'push',
      repository: 'platform/infra/network',
      ref: 'refs/heads/main',
      branch: 'main',
      tag: null,
      before,
      after,
      deleted: false,
      commit: { sha: after, message: 'second\n', author: 'Ada', url: 'https://gitlab.example.com/c2' },
      changedFiles: ['a.tf', 'b.tf'],
      sender: 'ada',
    });
  });

  it('does not know the changed files when the commit list is cut or the branch is new', () => {
    const cut = parseWebhook('gitlab', delivery('Push Hook', { ...pushPayload, total_commits_count: 40 }));
    assert.equal(cut.type === 'push' && cut.changedFiles, null);
    const created = parseWebhook('gitlab', delivery('Push Hook', { ...pushPayload, before: zeros }));
    assert.equal(created.type === 'push' && created.changedFiles, null);
  });

  it('reads a deleted branch and an annotated tag whose commit is not listed', () => {
    const deleted = parseWebhook('gitlab', delivery('Push Hook', { ...pushPayload, after: zeros, checkout_sha: null, commits: [], total_commits_count: 0 }));
    assert.deepEqual(deleted.type === 'push' && [deleted.deleted, deleted.commit, deleted.changedFiles], [true, null, []]);
    const tag = parseWebhook('gitlab', delivery('Tag Push Hook', { ...pushPayload, object_kind: 'tag_push', ref: 'refs/tags/v2', before: zeros, after: '3'.repeat(40), commits: [] }));
    assert.deepEqual(tag.type === 'push' && [tag.tag, tag.branch, tag.commit], ['v2', null, { sha: after, message: '', author: '', url: null }]);
  });

  it('reads merge request actions: an update is a new commit only with oldrev', () => {
    const payload = (action: string, oldrev?: string) => ({
      object_kind: 'merge_request',
      user: { username: 'ada' },
      project: { path_with_namespace: 'platform/infra' },
      object_attributes: { iid: 7, action, last_commit: { id: after }, source_branch: 'feature', target_branch: 'main', url: 'https://gitlab.example.com/mr/7', title: 'Feature', oldrev },
    });
    assert.deepEqual(parseWebhook('gitlab', delivery('Merge Request Hook', payload('update', before))), {
      type: 'pull_request', repository: 'platform/infra', action: 'updated', number: 7, headSha: after, headBranch: 'feature', baseBranch: 'main',
      url: 'https://gitlab.example.com/mr/7', title: 'Feature', author: 'ada',
    });
    const actions = [payload('update'), payload('open'), payload('reopen'), payload('close'), payload('merge'), payload('approved')]
      .map((body) => (parseWebhook('gitlab', delivery('Merge Request Hook', body)) as { action: string }).action);
    assert.deepEqual(actions, ['other', 'opened', 'opened', 'closed', 'closed', 'other']);
  });

  it('reads pushes and merge requests from a system hook, and ignores the rest', () => {
    const event = parseWebhook('gitlab', delivery('System Hook', { ...pushPayload, event_name: 'push' }));
    assert.equal(event.type, 'push');
    assert.deepEqual(parseWebhook('gitlab', delivery('System Hook', { event_name: 'project_create' })), { type: 'ignored', event: 'System Hook project_create' });
    assert.deepEqual(parseWebhook('gitlab', delivery('Note Hook', {})), { type: 'ignored', event: 'Note Hook' });
  });

  it('refuses a push without a project', () => {
    assert.throws(() => parseWebhook('gitlab', delivery('Push Hook', { ...pushPayload, project: undefined })), { code: 'invalid_request' });
  });
});
