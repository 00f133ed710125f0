// Bitbucket Data Center deliveries read through parseWebhook.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWebhook, type IncomingWebhook } from './webhooks.ts';

const from = '1'.repeat(40);
const to = '2'.repeat(40);
const zeros = '0'.repeat(40);

function delivery(eventKey: string, payload: unknown): IncomingWebhook {
  return { body: Buffer.from(JSON.stringify(payload)), headers: { 'content-type': 'application/json; charset=utf-8', 'x-event-key': eventKey } };
}

const repository = { slug: 'infra', project: { key: 'OPS' } };

function refsChanged(changes: unknown[]) {
  return { eventKey: 'repo:refs_changed', actor: { name: 'ada' }, repository, changes };
}

describe('parseWebhook: Bitbucket Data Center', () => {
  it('reads the first change of refs_changed as a push, with no commit details or files', () => {
    const event = parseWebhook('bitbucket-dc', delivery('repo:refs_changed', refsChanged([
      { ref: { id: 'refs/heads/main', displayId: 'main', type: 'BRANCH' }, fromHash: from, toHash: to, type: 'UPDATE' },
      { ref: { id: 'refs/heads/other', displayId: 'other', type: 'BRANCH' }, fromHash: from, toHash: to, type: 'UPDATE' },
    ])));
    assert.deepEqual(event, {
      type: 'push',
      repository: 'OPS/infra',
      ref: 'refs/heads/main',
      branch: 'main',
      tag: null,
      before: from,
      after: to,
      deleted: false,
      commit: null,
      changedFiles: null,
      sender: 'ada',
    });
  });

  it('reads a new tag and a deleted branch', () => {
    const tag = parseWebhook('bitbucket-dc', delivery('repo:refs_changed', refsChanged([{ ref: { id: 'refs/tags/v1', displayId: 'v1', type: 'TAG' }, fromHash: zeros, toHash: to, type: 'ADD' }])));
    assert.deepEqual(tag.type === 'push' && [tag.tag, tag.branch, tag.deleted], ['v1', null, false]);
    const deleted = parseWebhook('bitbucket-dc', delivery('repo:refs_changed', refsChanged([{ ref: { id: 'refs/heads/old', type: 'BRANCH' }, fromHash: from, toHash: zeros, type: 'DELETE' }])));
    assert.deepEqual(deleted.type === 'push' && [deleted.branch, deleted.deleted], ['old', true]);
  });

  it('reads pull request events by their key', () => {
    const payload = {
      pullRequest: {
        id: 12,
        title: 'Bigger VMs',
        fromRef: { id: 'refs/heads/bigger', displayId: 'bigger', latestCommit: to },
        toRef: { id: 'refs/heads/main', displayId: 'main', repository },
        links: { self: [{ href: 'https://bitbucket.example.com/projects/OPS/repos/infra/pull-requests/12' }] },
        author: { user: { name: 'ada' } },
      },
    };
    assert.deepEqual(parseWebhook('bitbucket-dc', delivery('pr:from_ref_updated', payload)), {
      type: 'pull_request', repository: 'OPS/infra', action: 'updated', number: 12, headSha: to, headBranch: 'bigger', baseBranch: 'main',
      url: 'https://bitbucket.example.com/projects/OPS/repos/infra/pull-requests/12', title: 'Bigger VMs', author: 'ada',
    });
    const actions = ['pr:opened', 'pr:merged', 'pr:declined', 'pr:deleted', 'pr:modified', 'pr:comment:added']
      .map((key) => (parseWebhook('bitbucket-dc', delivery(key, payload)) as { action: string }).action);
    assert.deepEqual(actions, ['opened', 'closed', 'closed', 'closed', 'other', 'other']);
  });

  it('reads the test connection as a ping, ignores other keys, refuses a change list that is empty', () => {
    assert.deepEqual(parseWebhook('bitbucket-dc', delivery('diagnostics:ping', { test: true })), { type: 'ping' });
    assert.deepEqual(parseWebhook('bitbucket-dc', delivery('repo:modified', {})), { type: 'ignored', event: 'repo:modified' });
    assert.throws(() => parseWebhook('bitbucket-dc', delivery('repo:refs_changed', refsChanged([]))), { code: 'invalid_request' });
  });
});
