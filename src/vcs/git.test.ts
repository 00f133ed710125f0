// git.ts against real repositories served over file://: refs, a commit's
// archive (links kept, .git left out), changed files, submodules, and the
// failures a caller must be able to tell apart.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchCommitArchive, listRemoteRefs, packWorktree, type GitRemote } from './git.ts';
import { TestRepository, committedAt, readArchive } from './git-repositories.test-support.ts';

const token = 'glpat-SECRET-token-1234567890';
const repositories: TestRepository[] = [];
after(() => repositories.forEach((repository) => repository.remove()));

function testRepository(name?: string): TestRepository {
  const repository = new TestRepository(name);
  repositories.push(repository);
  return repository;
}

function remoteOf(url: string): GitRemote {
  return { url, kind: 'git', credentials: { token } };
}

const request = { submodules: false, maxBytes: 10_000_000 };

describe('listRemoteRefs', () => {
  it('names the default branch and every branch and tag, annotated tags peeled to their commit', async () => {
    const repository = testRepository();
    const first = repository.commit('first', { 'main.tf': 'one' });
    repository.git('tag', '-a', 'v1', '-m', 'release one');
    repository.git('tag', 'light');
    repository.git('checkout', '-q', '-b', 'feature/x');
    const second = repository.commit('second', { 'main.tf': 'two' });
    repository.git('checkout', '-q', 'main');
    const refs = await listRemoteRefs(remoteOf(repository.publish()));
    assert.equal(refs.head, 'main');
    assert.deepEqual(Object.fromEntries(refs.refs), {
      'refs/heads/main': first,
      'refs/heads/feature/x': second,
      'refs/tags/v1': first,
      'refs/tags/light': first,
    });
  });

  it('fails with vcs_fetch_failed for a repository that is not there', async () => {
    const repository = testRepository();
    await assert.rejects(listRemoteRefs(remoteOf(`${repository.url}-missing`)), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'vcs_fetch_failed');
      assert.match(error.message, /repository not found/);
      assert.ok(!error.message.includes(token));
      return true;
    });
  });
});

describe('fetchCommitArchive', () => {
  let repository: TestRepository;
  let first: string;
  let second: string;
  let url: string;

  before(() => {
    repository = testRepository();
    first = repository.commit('first', { 'main.tf': 'one', 'modules/net/net.tf': 'net', 'docs/readme.md': 'docs' });
    repository.write({ 'vendored/code.tf': 'code' });
    symlinkSync('../main.tf', path.join(repository.work, 'modules/link.tf'));
    symlinkSync('/etc/passwd', path.join(repository.work, 'escape'));
    repository.git('rm', '-q', 'docs/readme.md');
    second = repository.commit('second\n\nwith a body', { 'main.tf': 'two', 'extra.tf': 'extra' });
    url = repository.publish();
  });

  it('archives the tree at the commit without .git, links kept as links', async () => {
    const fetched = await fetchCommitArchive(remoteOf(url), { ...request, sha: second });
    const entries = await readArchive(fetched.archive);
    assert.deepEqual([...entries.keys()].filter((name) => entries.get(name)!.type !== 'Directory').sort(), [
      'escape', 'extra.tf', 'main.tf', 'modules/link.tf', 'modules/net/net.tf', 'vendored/code.tf',
    ]);
    assert.equal(entries.get('main.tf')?.content, 'two');
    assert.deepEqual(entries.get('modules/link.tf'), { type: 'SymbolicLink', linkpath: '../main.tf' });
    assert.deepEqual(entries.get('escape'), { type: 'SymbolicLink', linkpath: '/etc/passwd' });
    assert.ok([...entries.keys()].every((name) => !name.split('/').includes('.git') && !name.startsWith('./')));
    assert.deepEqual(fetched.commit, { sha: second, message: 'second\n\nwith a body', authorName: 'Ada Lovelace', authorEmail: 'ada@example.com', committedAt });
    assert.equal(fetched.changedFiles, null);
  });

  it('archives every committed file, whatever the repository\'s export-ignore and export-subst attributes say', async () => {
    const attributes = new TestRepository('attributes');
    try {
      const sha = attributes.commit('attributes', { '.gitattributes': 'hidden.tf export-ignore\nversion.tf export-subst\n', 'hidden.tf': 'hidden', 'version.tf': '$Format:%H$' });
      const entries = await readArchive((await fetchCommitArchive(remoteOf(attributes.publish()), { ...request, sha })).archive);
      assert.equal(entries.get('hidden.tf')?.content, 'hidden');
      assert.equal(entries.get('version.tf')?.content, '$Format:%H$');
    } finally {
      attributes.remove();
    }
  });

  it('fetches a commit that no ref points at', async () => {
    const fetched = await fetchCommitArchive(remoteOf(url), { ...request, sha: first.toUpperCase() });
    const entries = await readArchive(fetched.archive);
    assert.equal(entries.get('main.tf')?.content, 'one');
    assert.equal(entries.get('docs/readme.md')?.content, 'docs');
    assert.equal(fetched.commit.message, 'first');
  });

  it('lists the files changed since compareTo, both paths of a rename', async () => {
    const fetched = await fetchCommitArchive(remoteOf(url), { ...request, sha: second, compareTo: first });
    assert.deepEqual(fetched.changedFiles?.sort(), ['docs/readme.md', 'escape', 'extra.tf', 'main.tf', 'modules/link.tf', 'vendored/code.tf']);
    const same = await fetchCommitArchive(remoteOf(url), { ...request, sha: second, compareTo: second });
    assert.deepEqual(same.changedFiles, []);
  });

  it('has no changed files for a missing, all-zero or unknown compareTo', async () => {
    for (const compareTo of [null, undefined, '0'.repeat(40), 'f'.repeat(40), 'not-a-sha']) {
      const fetched = await fetchCommitArchive(remoteOf(url), { ...request, sha: second, compareTo });
      assert.equal(fetched.changedFiles, null, `compareTo ${compareTo}`);
    }
  });

  it('refuses a sha that is not one before running git', async () => {
    for (const sha of ['main', 'abc123', `-${'a'.repeat(39)}`, `${'a'.repeat(40)} `, '0'.repeat(40)]) {
      await assert.rejects(fetchCommitArchive(remoteOf('file:///nowhere'), { ...request, sha }), { code: 'validation_failed' });
    }
    await assert.rejects(fetchCommitArchive(remoteOf('--upload-pack=touch /tmp/x'), { ...request, sha: second }), { code: 'validation_failed' });
    await assert.rejects(fetchCommitArchive(remoteOf(url), { ...request, sha: second, ref: '--upload-pack=x' }), { code: 'validation_failed' });
  });

  it('fails with vcs_fetch_failed, saying the commit was not found, for a sha the repository does not have', async () => {
    await assert.rejects(fetchCommitArchive(remoteOf(url), { ...request, sha: 'e'.repeat(40), ref: 'refs/heads/main' }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'vcs_fetch_failed');
      assert.match(error.message, /commit not found/);
      assert.ok(!error.message.includes(token));
      return true;
    });
  });

  it('stops with vcs_archive_too_large once the archive passes maxBytes', async () => {
    const big = testRepository();
    const random = Buffer.alloc(300_000);
    for (let index = 0; index < random.length; index += 1) random[index] = Math.floor(Math.random() * 256);
    writeFileSync(path.join(big.work, 'noise.bin'), random);
    const sha = big.commit('noise');
    await assert.rejects(fetchCommitArchive(remoteOf(big.publish()), { ...request, sha, maxBytes: 100_000 }), { code: 'vcs_archive_too_large' });
  });

  it('passes the caller\'s abort through and turns its own deadline into vcs_fetch_failed', async () => {
    await assert.rejects(fetchCommitArchive(remoteOf(url), { ...request, sha: second }, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    await assert.rejects(fetchCommitArchive(remoteOf(url), { ...request, sha: second }, { timeoutMs: 1 }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'vcs_fetch_failed');
      assert.match(error.message, /did not finish within/);
      return true;
    });
  });
});

describe('packWorktree', () => {
  it('leaves out every file or directory named .git, at any depth', async () => {
    const repository = testRepository();
    repository.write({ 'nested/.git': 'gitdir: ../elsewhere\n', 'nested/keep.tf': 'keep', 'deep/er/.git/config': 'x', '.gitignore': 'kept' });
    const entries = await readArchive(await packWorktree(repository.work, 1_000_000));
    assert.deepEqual([...entries.keys()].filter((name) => entries.get(name)!.type === 'File').sort(), ['.gitignore', 'nested/keep.tf']);
    assert.ok([...entries.keys()].every((name) => !name.split('/').includes('.git')));
  });

  it('archives an empty tree as an empty archive', async () => {
    const repository = testRepository();
    const empty = path.join(repository.root, 'empty');
    mkdirSync(empty);
    assert.equal((await readArchive(await packWorktree(empty, 1_000))).size, 0);
  });
});

describe('fetchCommitArchive with submodules', () => {
  let superproject: TestRepository;
  let sha: string;

  before(() => {
    const library = testRepository('library');
    library.commit('library', { 'library.tf': 'library' });
    library.publish();
    // Beside the library's bare repository, so the relative URL resolves against the superproject's remote.
    superproject = new TestRepository('super');
    repositories.push(superproject);
    superproject.git('-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', library.url, 'vendor/library');
    superproject.git('config', '-f', '.gitmodules', 'submodule.vendor/library.url', `../../${path.basename(library.root)}/library.git`);
    sha = superproject.commit('with a submodule', { 'main.tf': 'main' });
    superproject.publish();
  });

  it('leaves submodules out unless asked', async () => {
    const entries = await readArchive((await fetchCommitArchive(remoteOf(superproject.url), { ...request, sha })).archive);
    assert.equal(entries.get('vendor/library')?.type, 'Directory');
    assert.equal(entries.has('vendor/library/library.tf'), false);
  });

  it('checks submodules out when asked, their .git files left out', async () => {
    const entries = await readArchive((await fetchCommitArchive(remoteOf(superproject.url), { ...request, sha, submodules: true })).archive);
    assert.equal(entries.get('vendor/library/library.tf')?.content, 'library');
    assert.equal(entries.has('vendor/library/.git'), false);
    assert.equal(entries.get('.gitmodules')?.type, 'File');
  });

  it('refuses a submodule over a protocol the remote does not use', async () => {
    const hostile = testRepository('hostile');
    hostile.write({ '.gitmodules': '[submodule "x"]\n\tpath = x\n\turl = ext::sh -c touch% /tmp/outpost-pwned\n' });
    hostile.git('add', '.gitmodules');
    hostile.git('update-index', '--add', '--cacheinfo', `160000,${sha},x`);
    hostile.git('commit', '-q', '-m', 'hostile');
    const hostileSha = hostile.git('rev-parse', 'HEAD');
    await assert.rejects(fetchCommitArchive(remoteOf(hostile.publish()), { ...request, sha: hostileSha, submodules: true }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'vcs_fetch_failed');
      assert.match(error.message, /transport 'ext' not allowed/);
      return true;
    });
  });
});
