// git.ts with credentials, end to end: over HTTP the token travels as an
// Authorization header the server checks (never in the URL, never in an
// error), and over SSH the key and known hosts are files handed to ssh by
// path. The SSH server is a stand-in `ssh` on PATH that records how it was
// called and runs git-upload-pack locally.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchCommitArchive, listRemoteRefs, type GitRemote } from './git.ts';
import { TestRepository, readArchive, serveGitOverHttp, type HttpGitServer } from './git-repositories.test-support.ts';

const token = 'ghp_SECRETtoken1234567890abcdef';
const basic = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;

const repository = new TestRepository('repo');
let tip: string;
let older: string;
let server: HttpGitServer;

before(async () => {
  older = repository.commit('older', { 'main.tf': 'older' });
  tip = repository.commit('tip', { 'main.tf': 'tip' });
  repository.publish();
  server = await serveGitOverHttp(repository.root, basic);
});
after(() => {
  server.close();
  repository.remove();
});

function httpRemote(credentials: GitRemote['credentials']): GitRemote {
  return { url: `${server.url}/repo.git`, kind: 'github', credentials };
}

describe('git over HTTP with a token', () => {
  it('sends the token as an Authorization header and lists the refs', async () => {
    const refs = await listRemoteRefs(httpRemote({ token }));
    assert.equal(refs.refs.get('refs/heads/main'), tip);
    assert.ok(server.authorizations.includes(basic));
  });

  it('sends Basic with the username given in the credentials', async () => {
    await assert.rejects(listRemoteRefs(httpRemote({ token, username: 'someone' })), { code: 'vcs_fetch_failed' });
    assert.equal(server.authorizations.at(-1), `Basic ${Buffer.from(`someone:${token}`).toString('base64')}`);
  });

  it('fetches a commit behind a ref when the server will not send it by sha', async () => {
    const fetched = await fetchCommitArchive(httpRemote({ token }), { sha: older, ref: 'refs/heads/main', submodules: false, maxBytes: 1_000_000, compareTo: tip });
    assert.equal((await readArchive(fetched.archive)).get('main.tf')?.content, 'older');
    assert.deepEqual(fetched.changedFiles, ['main.tf']);
  });

  it('says the commit was not found when it is neither fetchable by sha nor behind the ref', async () => {
    await assert.rejects(fetchCommitArchive(httpRemote({ token }), { sha: older, submodules: false, maxBytes: 1_000_000 }), /commit not found/);
    await assert.rejects(fetchCommitArchive(httpRemote({ token }), { sha: 'd'.repeat(40), ref: 'refs/heads/main', submodules: false, maxBytes: 1_000_000 }), /commit not found/);
  });

  it('fails with vcs_fetch_failed naming authentication, and no credential in the message, for a wrong token', async () => {
    const wrong = 'ghp_WRONGtoken0987654321fedcba';
    await assert.rejects(fetchCommitArchive(httpRemote({ token: wrong }), { sha: tip, submodules: false, maxBytes: 1_000_000 }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'vcs_fetch_failed');
      assert.match(error.message, /authentication failed/);
      for (const secret of [wrong, Buffer.from(`x-access-token:${wrong}`).toString('base64')]) assert.ok(!error.message.includes(secret));
      return true;
    });
  });
});

describe('git over SSH with a key', () => {
  const record = path.join(repository.root, 'ssh-record.txt');
  const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
  const originalPath = process.env.PATH;

  before(() => {
    repository.write({ 'bin/.keep': '' });
    const script = [
      '#!/bin/sh',
      `record='${record}'`,
      ': > "$record"',
      'while [ $# -gt 1 ]; do',
      '  printf \'%s\\n\' "$1" >> "$record"',
      '  if [ "$1" = "-i" ]; then printf \'key-mode=%s\\nkey=%s\\n\' "$(stat -c %a "$2")" "$(head -n 1 "$2")" >> "$record"; fi',
      '  case "$1" in UserKnownHostsFile=*) printf \'known-hosts=%s\\n\' "$(cat "${1#UserKnownHostsFile=}")" >> "$record";; esac',
      '  shift',
      'done',
      'printf \'command=%s\\n\' "$1" >> "$record"',
      'exec sh -c "$1"',
    ].join('\n');
    writeFileSync(path.join(repository.work, 'bin/ssh'), `${script}\n`);
    chmodSync(path.join(repository.work, 'bin/ssh'), 0o755);
    process.env.PATH = `${path.join(repository.work, 'bin')}:${originalPath}`;
  });
  after(() => {
    process.env.PATH = originalPath;
  });

  it('hands ssh the key as a 0600 file and checks the host against the known hosts given', async () => {
    const knownHosts = 'git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
    const remote: GitRemote = { url: `ssh://git@git.example.com${repository.bare}`, kind: 'git', credentials: { sshKey: key, knownHosts } };
    const fetched = await fetchCommitArchive(remote, { sha: tip, submodules: false, maxBytes: 1_000_000 });
    assert.equal((await readArchive(fetched.archive)).get('main.tf')?.content, 'tip');
    const lines = readFileSync(record, 'utf8').split('\n');
    assert.ok(lines.includes('key-mode=600'));
    assert.ok(lines.includes('key=-----BEGIN OPENSSH PRIVATE KEY-----'));
    assert.ok(lines.includes('IdentitiesOnly=yes'));
    assert.ok(lines.includes('StrictHostKeyChecking=yes'));
    assert.ok(lines.includes(`known-hosts=${knownHosts}`));
    assert.ok(lines.includes('git@git.example.com'));
    assert.ok(!lines.some((line) => line.includes('b3BlbnNzaC1rZXktdjEAAAAA') && !line.startsWith('key=')));
  });

  it('accepts a new host key into a known_hosts file of its own when none are given', async () => {
    const remote: GitRemote = { url: `git@git.example.com:${repository.bare}`, kind: 'git', credentials: {} };
    const refs = await listRemoteRefs(remote);
    assert.equal(refs.refs.get('refs/heads/main'), tip);
    const lines = readFileSync(record, 'utf8').split('\n');
    assert.ok(lines.includes('StrictHostKeyChecking=accept-new'));
    assert.ok(lines.includes('known-hosts='));
    assert.ok(!lines.includes('-i'));
  });
});
