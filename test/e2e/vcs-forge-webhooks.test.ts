// The webhooks of GitHub, GitLab and Bitbucket Data Center, as those forges
// send them (their headers, signatures and JSON), to the real server, with
// the repositories on a real git server (`git http-backend`) that checks
// each forge's way of presenting a token over HTTPS. Each forge's push runs
// its commit; a GitHub tag matching the workspace's tags regex runs the
// tag; a GitLab merge request gets a speculative plan; Bitbucket, whose
// push lists no files, runs (changed files are found, never guessed).
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startGitHttpServer, type GitHttpServer } from '../support/git-http-server.ts';
import { quickConfig } from '../support/job-control.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import type { TestHooks } from '../support/cluster.ts';
import { createVcsProvider, linkRepository, waitForRunOfCommit, workspaceRuns, type CreatedProvider } from '../support/vcs-calls.ts';
import { waitUntil } from '../support/waits.ts';

const token = 'forge-token-5c9e1a77';
const hmac = (body: string, secret: string) => createHmac('sha256', secret).update(body).digest('hex');

async function gitServerFor(t: TestHooks, username: string): Promise<GitHttpServer> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'outpost-forge-git-'));
  const server = await startGitHttpServer({ root, auth: { username, password: token } });
  t.after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });
  return server;
}

async function send(provider: CreatedProvider, headers: Record<string, string>, payload: unknown): Promise<string> {
  const response = await fetch(provider.webhookUrl!, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(payload) });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

async function linkedWorkspace(cluster: Cluster, provider: CreatedProvider, identifier: string, extra: Record<string, unknown> = {}): Promise<string> {
  const workspace = await cluster.createWorkspace();
  await linkRepository(cluster.server, workspace.id, { 'vcs-repo': { identifier, branch: 'main', 'vcs-provider-id': provider.id, ...extra } });
  return workspace.id;
}

test('GitHub, GitLab and Bitbucket Data Center webhooks run their commits, tags and merge requests', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { serverEnv: { OUTPOST_VCS_INTERVAL: '200ms' } });
  const { server } = cluster;

  // GitHub: HTTPS as x-access-token with the token; X-Hub-Signature-256.
  const github = await gitServerFor(t, 'x-access-token');
  await github.createRepo('team/infra');
  const githubProvider = await createVcsProvider(server, { name: 'github', kind: 'github', 'http-url': github.url, token });
  const githubWorkspace = await linkedWorkspace(cluster, githubProvider, 'team/infra', { 'tags-regex': '^v\\d' });
  const before = await github.pushFiles('team/infra', 'main', quickConfig('gh-1'), 'First');
  const pushed = await github.pushFiles('team/infra', 'main', quickConfig('gh-2'), 'Second from GitHub');
  const githubPush = JSON.stringify({
    ref: 'refs/heads/main',
    before,
    after: pushed,
    head_commit: { id: pushed, message: 'Second from GitHub', url: `https://github.example.com/team/infra/commit/${pushed}`, author: { name: 'Octo Cat' } },
    commits: [{ added: [], modified: ['main.tf'], removed: [] }],
    repository: { full_name: 'Team/Infra' },
    sender: { login: 'octocat' },
  });
  const githubHeaders = (event: string, body: string) => ({ 'x-github-event': event, 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${hmac(body, githubProvider.webhookSecret)}` });
  await send(githubProvider, githubHeaders('push', githubPush), JSON.parse(githubPush));
  const githubRun = await waitForRunOfCommit(server, githubWorkspace, pushed);
  await cluster.waitForRun(githubRun.id, ['applied']);
  assert.equal(githubRun.attributes['ingress-attributes']?.['commit-url'], `https://github.example.com/team/infra/commit/${pushed}`);
  assert.equal(githubRun.attributes['ingress-attributes']?.['sender-username'], 'octocat');
  // A tag the regex matches: a run of the tag's commit.
  const tagged = JSON.stringify({ ref: 'refs/tags/v1.2.0', before: '0'.repeat(40), after: pushed, created: true, head_commit: { id: pushed, message: 'Second from GitHub' }, repository: { full_name: 'team/infra' } });
  await send(githubProvider, githubHeaders('push', tagged), JSON.parse(tagged));
  const tagRun = await waitUntil(
    'the run of tag v1.2.0',
    async () => (await workspaceRuns(server, githubWorkspace)).find((run) => run.attributes['ingress-attributes']?.tag === 'v1.2.0'),
    () => server.output().slice(-3000),
    60_000,
  );
  // The tag is of the commit just applied: its plan has nothing to change.
  await cluster.waitForRun(tagRun.id, ['planned_and_finished']);
  // A tag the regex does not match starts nothing.
  const ignoredTag = JSON.stringify({ ref: 'refs/tags/nightly', before: '0'.repeat(40), after: pushed, created: true, repository: { full_name: 'team/infra' } });
  assert.match(await send(githubProvider, githubHeaders('push', ignoredTag), JSON.parse(ignoredTag)), /does not match/);

  // GitLab: HTTPS as oauth2 with the token; X-Gitlab-Token is the secret itself.
  const gitlab = await gitServerFor(t, 'oauth2');
  await gitlab.createRepo('group/sub/infra');
  const gitlabProvider = await createVcsProvider(server, { name: 'gitlab', kind: 'gitlab', 'http-url': gitlab.url, token });
  const gitlabWorkspace = await linkedWorkspace(cluster, gitlabProvider, 'group/sub/infra');
  await gitlab.pushFiles('group/sub/infra', 'main', quickConfig('gl-1'), 'First');
  const feature = await gitlab.pushFiles('group/sub/infra', 'feature', quickConfig('gl-2'), 'Try it', { from: 'main' });
  const gitlabHeaders = (event: string) => ({ 'x-gitlab-event': event, 'x-gitlab-token': gitlabProvider.webhookSecret, 'x-gitlab-event-uuid': randomUUID() });
  await send(gitlabProvider, gitlabHeaders('Merge Request Hook'), {
    object_kind: 'merge_request',
    user: { username: 'reviewer' },
    project: { path_with_namespace: 'group/sub/infra' },
    object_attributes: { iid: 7, action: 'open', last_commit: { id: feature }, source_branch: 'feature', target_branch: 'main', url: 'https://gitlab.example.com/group/sub/infra/-/merge_requests/7', title: 'Try it' },
  });
  const mergeRequest = await waitForRunOfCommit(server, gitlabWorkspace, feature, { pullRequest: true });
  assert.equal(mergeRequest.attributes['plan-only'], true);
  assert.equal(mergeRequest.attributes['ingress-attributes']?.['pull-request-number'], 7);
  await cluster.waitForRun(mergeRequest.id, ['planned_and_finished']);
  // The wrong token is refused.
  const forged = await fetch(gitlabProvider.webhookUrl!, { method: 'POST', headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 'guess' }, body: '{}' });
  assert.equal(forged.status, 401);

  // Bitbucket Data Center: /scm/<project>/<slug>.git, a user name with the token; X-Hub-Signature.
  const bitbucket = await gitServerFor(t, 'deploy-bot');
  await bitbucket.createRepo('scm/PLAT/infra');
  const bitbucketProvider = await createVcsProvider(server, { name: 'bitbucket', kind: 'bitbucket-dc', 'http-url': bitbucket.url, token, username: 'deploy-bot' });
  const bitbucketWorkspace = await linkedWorkspace(cluster, bitbucketProvider, 'PLAT/infra', {});
  const first = await bitbucket.pushFiles('scm/PLAT/infra', 'main', quickConfig('bb-1'), 'First');
  const second = await bitbucket.pushFiles('scm/PLAT/infra', 'main', quickConfig('bb-2'), 'Second from Bitbucket', { author: { name: 'Bit Bucket', email: 'bb@example.com' } });
  const refsChanged = JSON.stringify({
    eventKey: 'repo:refs_changed',
    actor: { name: 'deploy-bot' },
    repository: { slug: 'infra', project: { key: 'PLAT' } },
    changes: [{ ref: { id: 'refs/heads/main', displayId: 'main', type: 'BRANCH' }, fromHash: first, toHash: second, type: 'UPDATE' }],
  });
  await send(bitbucketProvider, { 'x-event-key': 'repo:refs_changed', 'x-request-id': randomUUID(), 'x-hub-signature': `sha256=${hmac(refsChanged, bitbucketProvider.webhookSecret)}` }, JSON.parse(refsChanged));
  const bitbucketRun = await waitForRunOfCommit(server, bitbucketWorkspace, second);
  await cluster.waitForRun(bitbucketRun.id, ['applied']);
  // Bitbucket's push names no commit message: it comes from the commit itself.
  assert.equal(bitbucketRun.attributes['ingress-attributes']?.['commit-author'], 'Bit Bucket');
  assert.equal(bitbucketRun.attributes['ingress-attributes']?.['commit-message'], 'Second from Bitbucket');

  // Each git server saw the forge's own way of presenting the token, and the token reached no log.
  for (const [gitServer, user] of [[github, 'x-access-token'], [gitlab, 'oauth2'], [bitbucket, 'deploy-bot']] as const) {
    assert.ok(gitServer.requests.some((request) => request.user === user && request.status === 200), `${user}: ${JSON.stringify(gitServer.requests.slice(-3))}`);
  }
  assert.ok(!server.output().includes(token));
});
