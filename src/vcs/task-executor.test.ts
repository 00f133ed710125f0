import assert from 'node:assert/strict';
import { test } from 'node:test';
import { executeTask } from './task-executor.ts';
import { readArchive, TestRepository } from './git-repositories.test-support.ts';

const noCredentials = {};

test('a refs task lists the branches and the default branch; a fetch task returns the archive, the commit and the changed files', async (t) => {
  const repository = new TestRepository();
  t.after(() => repository.remove());
  const first = repository.commit('First', { 'main.tf': 'one\n' });
  const second = repository.commit('Second\n\nbody', { 'modules/a.tf': 'a\n' });
  const url = repository.publish();

  const refs = await executeTask({ kind: 'refs', task_id: 'vcsk-1', remote: { kind: 'git', url, credentials: noCredentials } });
  assert.deepEqual(refs.result, { outcome: 'refs', head: 'main', refs: { 'refs/heads/main': second } });

  const fetched = await executeTask({
    kind: 'fetch',
    task_id: 'vcsk-2',
    remote: { kind: 'git', url, credentials: noCredentials },
    sha: second,
    ref: 'refs/heads/main',
    submodules: false,
    compare_to: first,
    max_bytes: 1024 * 1024,
  });
  assert.equal(fetched.result.outcome, 'fetched');
  if (fetched.result.outcome !== 'fetched') return;
  assert.equal(fetched.result.commit.sha, second);
  assert.equal(fetched.result.commit.message, 'Second\n\nbody');
  assert.equal(fetched.result.commit.author_name, 'Ada Lovelace');
  assert.deepEqual(fetched.result.changed_files, ['modules/a.tf']);
  assert.deepEqual([...(await readArchive(fetched.archive!)).keys()].filter((name) => name.endsWith('.tf')).sort(), ['main.tf', 'modules/a.tf']);
});

test('failures become a failed result with a code of the catalogue, never an exception', async () => {
  const missing = await executeTask({ kind: 'refs', task_id: 'vcsk-3', remote: { kind: 'git', url: 'file:///nonexistent/repository.git', credentials: { token: 'secret-token-value' } } });
  assert.equal(missing.result.outcome, 'failed');
  if (missing.result.outcome === 'failed') {
    assert.equal(missing.result.error.code, 'vcs_fetch_failed');
    assert.ok(!missing.result.error.message.includes('secret-token-value'));
  }
  const noApi = await executeTask({
    kind: 'status',
    task_id: 'vcsk-4',
    endpoint: { kind: 'git', url: '', api_url: null },
    credentials: {},
    repository: 'https://git.example.com/a.git',
    sha: 'a'.repeat(40),
    status: { state: 'success', context: 'outpost/ws', description: 'Applied', target_url: 'https://outpost.example.com/runs/run-1' },
  });
  assert.deepEqual(noApi.result.outcome === 'failed' && noApi.result.error.code, 'validation_failed');
});
