// A plain git server (Debian git's `git http-backend`, smart HTTP with basic
// authentication, and OpenSSH's sshd) that sends no webhooks: the workspace follows its branch
// by polling with `git ls-remote`. The default branch is found on the first
// look, a pushed commit is run with its author and message, refused
// credentials show on the workspace (and nowhere else), and a commit with a
// link that escapes the configuration meets the same checks as an upload.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { getWorkspace } from '../support/api-calls.ts';
import { gitEnvironment, startGitHttpServer } from '../support/git-http-server.ts';
import { quickConfig } from '../support/job-control.ts';
import { databaseBackends } from '../support/postgres.ts';
import { sshdForTests, startSshGitServer } from '../support/ssh-git-server.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { createVcsProvider, linkRepository, waitForRunOfCommit } from '../support/vcs-calls.ts';
import { waitUntil } from '../support/waits.ts';

const git = promisify(execFile);
const password = 'git-pass-9f2c1d7e5b';
const sshd = sshdForTests('run the plain git over SSH test');

for (const backend of databaseBackends()) {
  test(`polling a plain git server runs pushed commits; refused credentials show on the workspace only (${backend})`, async (t) => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'outpost-git-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const gitServer = await startGitHttpServer({ root: path.join(root, 'repos'), auth: { username: 'ci', password } });
    t.after(() => gitServer.close());
    const repo = await gitServer.createRepo('platform');
    await gitServer.pushFiles('platform', 'main', quickConfig('one'), 'Initial configuration');

    const cluster = await setupCluster(t, backend, { serverEnv: { OUTPOST_VCS_INTERVAL: '200ms' } });
    const { server, workspace } = cluster;
    const provider = await createVcsProvider(server, { name: 'plain', kind: 'git', username: 'ci', token: password, 'poll-interval': 1 });
    assert.equal(provider.webhookUrl, null, 'a plain git provider has no webhooks');
    assert.equal(provider.resource.attributes['poll-interval'], 1);
    // No branch given: the repository's default branch is found on the first look, which also sets the baseline (no run).
    await linkRepository(server, workspace.id, { 'vcs-repo': { identifier: repo.cloneUrl, 'vcs-provider-id': provider.id } });
    await waitUntil('the default branch', async () => ((await getWorkspace(server, workspace.id)).attributes['vcs-repo']?.branch === 'main' ? true : undefined), () => server.output().slice(-4000), 30_000);

    const sha = await gitServer.pushFiles('platform', 'main', quickConfig('two'), 'Change the label\n\nBecause.', { author: { name: 'Grace Hopper', email: 'grace@example.com' } });
    const run = await waitForRunOfCommit(server, workspace.id, sha);
    await cluster.waitForRun(run.id, ['applied']);
    const ingress = run.attributes['ingress-attributes']!;
    assert.deepEqual({ author: ingress['commit-author'], message: ingress['commit-message'], branch: ingress.branch }, { author: 'Grace Hopper', message: 'Change the label\n\nBecause.', branch: 'main' });
    assert.ok(gitServer.requests.some((request) => request.user === 'ci'), 'the server authenticated as the provider\'s user');

    // Wrong credentials: the workspace says why, and no run starts.
    await server.api('PATCH', `/api/v2/vcs-providers/${provider.id}`, { data: { type: 'vcs-providers', attributes: { token: 'not-the-password' } } });
    const unseen = await gitServer.pushFiles('platform', 'main', quickConfig('three'), 'Third label');
    const status = await waitUntil(
      'the workspace to show the refusal',
      async () => (await getWorkspace(server, workspace.id)).attributes['vcs-status'] ?? undefined,
      () => server.output().slice(-4000),
      60_000,
    );
    assert.match(status, /authentication|credentials/i);
    // Fixed: the commit pushed meanwhile is found and run.
    await server.api('PATCH', `/api/v2/vcs-providers/${provider.id}`, { data: { type: 'vcs-providers', attributes: { token: password } } });
    await cluster.waitForRun((await waitForRunOfCommit(server, workspace.id, unseen)).id, ['applied']);
    assert.equal((await getWorkspace(server, workspace.id)).attributes['vcs-status'], null);

    // A link out of the configuration, committed: the job refuses it as it refuses an upload's.
    const clone = path.join(root, 'clone');
    const env = { ...gitEnvironment(root), GIT_AUTHOR_NAME: 'Mallory', GIT_AUTHOR_EMAIL: 'm@example.com', GIT_COMMITTER_NAME: 'Mallory', GIT_COMMITTER_EMAIL: 'm@example.com' };
    await git('git', ['clone', '--quiet', repo.dir, clone], { env });
    await symlink('/etc/passwd', path.join(clone, 'passwd.tf'));
    await git('git', ['-C', clone, 'add', '--all'], { env });
    await git('git', ['-C', clone, 'commit', '--quiet', '-m', 'Read the host'], { env });
    await git('git', ['-C', clone, 'push', '--quiet', 'origin', 'HEAD:refs/heads/main'], { env });
    const hostile = (await git('git', ['-C', clone, 'rev-parse', 'HEAD'], { env })).stdout.trim();
    const refused = await cluster.waitForRun((await waitForRunOfCommit(server, workspace.id, hostile)).id, ['errored']);
    assert.equal(refused.attributes['error-code'], 'archive_link_escape', JSON.stringify(refused.attributes));

    // The password never reached a log.
    assert.ok(!server.output().includes(password), 'the server log does not contain the password');
    for (const agent of cluster.agents) assert.ok(!agent.output().includes(password));
  });
}

test('plain git over SSH: the provider\'s key and known hosts reach a real sshd; a host key that does not match is refused', { skip: sshd.skip }, async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'outpost-git-ssh-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  // Commits arrive over smart HTTP; the server reads the same bare repository over SSH.
  const gitServer = await startGitHttpServer({ root: path.join(root, 'repos') });
  t.after(() => gitServer.close());
  const ssh = await startSshGitServer(sshd.binary!);
  t.after(() => ssh.stop());
  const repo = await gitServer.createRepo('over-ssh');
  await gitServer.pushFiles('over-ssh', 'main', quickConfig('ssh-1'), 'Initial');

  const cluster = await setupCluster(t, 'sqlite', { serverEnv: { OUTPOST_VCS_INTERVAL: '200ms' } });
  const { server, workspace } = cluster;
  const provider = await createVcsProvider(server, { name: 'ssh', kind: 'git', 'ssh-key': ssh.clientKey, 'known-hosts': ssh.knownHosts, 'poll-interval': 1 });
  assert.equal(provider.resource.attributes['has-ssh-key'], true);
  await linkRepository(server, workspace.id, { 'vcs-repo': { identifier: ssh.urlOf(repo.dir), 'vcs-provider-id': provider.id } });
  await waitUntil('the default branch, over SSH', async () => ((await getWorkspace(server, workspace.id)).attributes['vcs-repo']?.branch === 'main' ? true : undefined), () => `${ssh.log()}\n${server.output().slice(-3000)}`, 30_000);
  const sha = await gitServer.pushFiles('over-ssh', 'main', quickConfig('ssh-2'), 'Over SSH');
  await cluster.waitForRun((await waitForRunOfCommit(server, workspace.id, sha)).id, ['applied']);
  assert.match(ssh.log(), /Accepted publickey for \S+ from 127\.0\.0\.1/);

  // Known hosts of another server: the connection is refused before any key is offered.
  const other = await startSshGitServer(sshd.binary!);
  t.after(() => other.stop());
  await server.api('PATCH', `/api/v2/vcs-providers/${provider.id}`, { data: { type: 'vcs-providers', attributes: { 'known-hosts': other.knownHosts.replace(/^\[127\.0\.0\.1\]:\d+/, ssh.knownHosts.split(' ')[0]!) } } });
  await gitServer.pushFiles('over-ssh', 'main', quickConfig('ssh-3'), 'Not fetched');
  const status = await waitUntil('the workspace to show the host key refusal', async () => (await getWorkspace(server, workspace.id)).attributes['vcs-status'] ?? undefined, () => server.output().slice(-3000), 60_000);
  assert.match(status, /host key/i);
  assert.ok(!server.output().includes(ssh.clientKey.split('\n')[1]!), 'the key never reaches the log');
});
