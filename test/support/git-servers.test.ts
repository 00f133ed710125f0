// Proves the git servers the VCS tests rely on behave like the real thing:
// Gitea takes pushes, opens pull requests, keeps commit statuses and
// delivers signed webhooks; the plain smart-HTTP server takes pushes,
// serves a commit by its sha and refuses wrong credentials; a network
// namespace lets its processes reach the host side of its veth pair while
// what listens on its loopback stays out of the host's reach.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { gitEnvironment, startGitHttpServer } from './git-http-server.ts';
import { giteaForTests, startGitea } from './gitea.ts';
import { createNetns, netnsForTests, runCommand } from './netns.ts';
import { freePort } from './ports.ts';
import { readLog, spawnLogged } from './spawned-process.ts';
import { waitUntil } from './waits.ts';

const gitea = giteaForTests('run the VCS tests against Gitea');
const namespaces = netnsForTests('test the VCS agent behind a network namespace');

interface Delivery {
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly payload: Record<string, unknown> & { pull_request?: Record<string, unknown> & { head: Record<string, unknown>; base: Record<string, unknown> } };
}

/**
 * Cleanups run last-in first-out (t.after runs hooks in the order they were
 * added): a process stops before its namespace and its directory go.
 */
function cleanups(t: TestContext): (cleanup: () => unknown) => void {
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    for (const cleanup of stack.reverse()) await cleanup();
  });
  return (cleanup) => stack.push(cleanup);
}

async function tempDir(defer: (cleanup: () => unknown) => void, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A webhook receiver that keeps each request's raw body, for signature checks. */
async function receiver(defer: (cleanup: () => unknown) => void, host = '127.0.0.1'): Promise<{ url: string; deliveries: Delivery[] }> {
  const deliveries: Delivery[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
      deliveries.push({ headers, body, payload: JSON.parse(body) as Delivery['payload'] });
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  defer(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://${host}:${(server.address() as AddressInfo).port}/hooks/gitea`, deliveries };
}

function waitForDelivery(deliveries: Delivery[], what: string, match: (delivery: Delivery) => boolean): Promise<Delivery> {
  return waitUntil(what, async () => deliveries.find(match), () => deliveries.map((d) => `${d.headers['x-gitea-event-type']} ${d.body.slice(0, 300)}`).join('\n'), 20_000);
}

function git(cwd: string, ...args: string[]): Promise<string> {
  return runCommand(['git', ...args], { cwd, env: gitEnvironment(cwd) });
}

test('Gitea takes pushes and pull requests, keeps commit statuses and signs its webhooks', { skip: gitea.skip }, async (t) => {
  const defer = cleanups(t);
  const dir = await tempDir(defer, 'outpost-gitea-');
  const forge = await startGitea({ binary: gitea.binary!, dir: path.join(dir, 'gitea') });
  defer(() => forge.stop());
  const hooks = await receiver(defer);
  const secret = 'webhook-secret';

  const repo = await forge.createRepo('infra');
  assert.equal(repo.fullName, `${forge.username}/infra`);
  assert.equal(repo.cloneUrl, `${forge.url}/${forge.username}/infra.git`);
  await forge.addWebhook('infra', { url: hooks.url, secret });

  const first = await forge.pushFiles('infra', 'main', { 'main.tf': 'terraform {}\n' }, 'first');
  const push = await waitForDelivery(hooks.deliveries, `the push of ${first}`, (d) => d.payload.after === first);
  const signature = createHmac('sha256', secret).update(push.body).digest('hex');
  assert.equal(push.headers['x-gitea-signature'], signature);
  assert.equal(push.headers['x-hub-signature-256'], `sha256=${signature}`);
  assert.equal(push.headers['x-gitea-event'], 'push');
  assert.equal(push.headers['x-github-event'], 'push');
  assert.match(push.headers['x-gitea-delivery'] ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(push.payload.ref, 'refs/heads/main');
  assert.equal(push.payload.before, '0'.repeat(40));
  assert.deepEqual((push.payload.commits as Array<{ added: string[] }>).map((commit) => commit.added), [['main.tf']]);
  assert.equal((push.payload.repository as { full_name: string }).full_name, repo.fullName);

  const second = await forge.pushFiles('infra', 'feature', { 'main.tf': 'terraform {}\n# changed\n', 'extra.tf': '' }, 'second');
  const pull = await forge.createPullRequest('infra', { head: 'feature', base: 'main', title: 'Change' });
  assert.equal(pull.htmlUrl, `${forge.url}/${repo.fullName}/pulls/${pull.number}`);
  const opened = await waitForDelivery(hooks.deliveries, 'the pull request opened', (d) => d.payload.action === 'opened');
  assert.equal(opened.headers['x-gitea-event'], 'pull_request');
  assert.equal(opened.payload.number, pull.number);
  assert.equal(opened.payload.pull_request?.head.sha, second);
  assert.equal(opened.payload.pull_request?.head.ref, 'feature');
  assert.equal(opened.payload.pull_request?.base.ref, 'main');
  assert.equal(opened.payload.pull_request?.html_url, pull.htmlUrl);

  const third = await forge.pushFiles('infra', 'feature', { 'extra.tf': null }, 'third');
  const synchronized = await waitForDelivery(hooks.deliveries, 'the pull request synchronized', (d) => d.payload.action === 'synchronized');
  assert.equal(synchronized.headers['x-gitea-event-type'], 'pull_request_sync');
  assert.equal(synchronized.payload.pull_request?.head.sha, third);
  const featurePush = await waitForDelivery(hooks.deliveries, `the push of ${third}`, (d) => d.payload.after === third);
  assert.deepEqual((featurePush.payload.commits as Array<{ removed: string[] }>).map((commit) => commit.removed), [['extra.tf']]);

  await forge.createCommitStatus('infra', third, { state: 'pending', context: 'outpost/plan', description: 'Planning', target_url: 'http://outpost.invalid/runs/1' });
  await forge.createCommitStatus('infra', third, { state: 'success', context: 'outpost/plan', description: 'No changes', target_url: 'http://outpost.invalid/runs/1' });
  const statuses = await forge.commitStatuses('infra', third);
  assert.deepEqual(
    statuses.map((status) => `${status.context} ${status.state} ${status.description} ${status.target_url}`).sort(),
    ['outpost/plan pending Planning http://outpost.invalid/runs/1', 'outpost/plan success No changes http://outpost.invalid/runs/1'],
  );

  // A commit no branch points at any more is fetched by its sha, with the
  // old protocol too: Gitea needs no setting for it.
  const clone = path.join(dir, 'fetch');
  await runCommand(['git', 'init', '--quiet', clone]);
  const authenticated = repo.cloneUrl.replace('http://', `http://${forge.username}:${forge.password}@`);
  await git(clone, '-c', 'protocol.version=0', 'fetch', '--quiet', '--depth=1', authenticated, second);
  assert.equal((await git(clone, 'show', `${second}:extra.tf`)), '');
});

test('the git smart-HTTP server takes pushes, serves a commit by its sha and refuses wrong credentials', async (t) => {
  const defer = cleanups(t);
  const dir = await tempDir(defer, 'outpost-git-http-');
  const server = await startGitHttpServer({ root: path.join(dir, 'repos'), auth: { username: 'deploy', password: 'hunter22' } });
  defer(() => server.close());
  const repo = await server.createRepo('modules');
  assert.equal(repo.cloneUrl, `${server.url}/modules.git`);

  const first = await server.pushFiles('modules', 'main', { 'vpc/main.tf': 'variable "cidr" {}\n' }, 'first');
  const second = await server.pushFiles('modules', 'main', { 'vpc/main.tf': 'variable "cidr" { default = "10.0.0.0/16" }\n' }, 'second');
  assert.ok(server.requests.some((request) => request.path === '/modules.git/git-receive-pack' && request.user === 'deploy' && request.status === 200));

  // `first` is no branch's tip: fetching it needs allowReachableSHA1InWant under protocol v0.
  for (const version of ['0', '2']) {
    const clone = path.join(dir, `fetch-v${version}`);
    await runCommand(['git', 'init', '--quiet', clone]);
    await git(clone, '-c', `protocol.version=${version}`, 'fetch', '--quiet', '--depth=1', repo.authenticatedUrl, first);
    assert.equal(await git(clone, 'show', `${first}:vpc/main.tf`), 'variable "cidr" {}\n');
  }

  // Many distinct tips make a negotiation over 1 KiB, which git gzips.
  const work = path.join(dir, 'work');
  await git(dir, 'clone', '--quiet', repo.authenticatedUrl, work);
  for (let index = 0; index < 40; index++) {
    await git(work, '-c', 'user.name=t', '-c', 'user.email=t@outpost.invalid', 'commit', '--quiet', '--allow-empty', '--message', `commit ${index}`);
    await git(work, 'branch', `branch-${index}`);
  }
  await git(work, 'push', '--quiet', 'origin', 'refs/heads/*:refs/heads/*');
  const mirror = path.join(dir, 'mirror');
  await git(dir, '-c', 'protocol.version=0', 'clone', '--quiet', '--mirror', repo.authenticatedUrl, mirror);
  assert.ok(server.requests.some((request) => request.path === '/modules.git/git-upload-pack' && request.contentEncoding === 'gzip'), 'a gzipped fetch negotiation');
  assert.equal((await git(mirror, 'rev-parse', 'branch-0~1')).trim(), second);

  const before = server.requests.length;
  const refused = path.join(dir, 'refused');
  await assert.rejects(git(dir, 'clone', '--quiet', repo.authenticatedUrl.replace(':hunter22@', ':wrong@'), refused), /Authentication failed/);
  await assert.rejects(git(dir, 'clone', '--quiet', repo.cloneUrl, refused), /could not read Username|Authentication failed/);
  const attempts = server.requests.slice(before);
  assert.ok(attempts.length > 0 && attempts.every((request) => request.status === 401 && request.user === undefined), JSON.stringify(attempts));
});

test('a network namespace reaches the host side of its pair, and its loopback is out of the host reach', { skip: namespaces.skip }, async (t) => {
  const defer = cleanups(t);
  const netns = await createNetns(`outpost-gs-${process.pid}`);
  defer(() => netns.destroy());
  const hostServer = await receiver(defer, netns.hostAddress);
  const answer = await netns.request({ url: hostServer.url, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"from":"inside"}' });
  assert.equal(answer.status, 200);
  assert.deepEqual(hostServer.deliveries.map((delivery) => delivery.payload), [{ from: 'inside' }]);

  // A port free on the host, so a refusal there means the namespace kept its listener to itself.
  const port = await freePort();
  const dir = await tempDir(defer, 'outpost-netns-');
  const [command, ...args] = netns.exec([process.execPath, '-e', `require('node:http').createServer((q, s) => s.end('inside')).listen(${port}, '127.0.0.1')`]);
  const logFile = path.join(dir, 'inside.log');
  const inside = spawnLogged({ command: command!, args, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: dir, logFile });
  defer(() => inside.killGroup());
  const reply = await waitUntil(
    'the server inside the namespace',
    async () => netns.request({ url: `http://127.0.0.1:${port}/`, timeoutMs: 2_000 }).catch(() => undefined),
    () => readLog(logFile),
    15_000,
  );
  assert.equal(reply.body, 'inside');
  for (const url of [`http://127.0.0.1:${port}/`, `http://${netns.nsAddress}:${port}/`]) {
    await assert.rejects(fetch(url, { signal: AbortSignal.timeout(2_000) }), (error: Error) => (error.cause as { code?: string } | undefined)?.code === 'ECONNREFUSED');
  }
});

test('Gitea inside a network namespace is driven from inside, and its webhooks reach the host side', { skip: gitea.skip || namespaces.skip }, async (t) => {
  const defer = cleanups(t);
  const netns = await createNetns(`outpost-gsg-${process.pid}`);
  defer(() => netns.destroy());
  const dir = await tempDir(defer, 'outpost-gitea-netns-');
  // A port free on the host, so the host's refusal below means the namespace kept Gitea to itself.
  const forge = await startGitea({ binary: gitea.binary!, dir, netns: netns.name, port: await freePort() });
  defer(() => forge.stop());
  const hooks = await receiver(defer, netns.hostAddress);

  await forge.createRepo('private-infra', { private: true });
  await forge.addWebhook('private-infra', { url: hooks.url, secret: 'inside', events: ['push'] });
  const sha = await forge.pushFiles('private-infra', 'main', { 'main.tf': '' }, 'first');
  const push = await waitForDelivery(hooks.deliveries, `the push of ${sha}`, (d) => d.payload.after === sha);
  assert.equal(push.headers['x-gitea-signature'], createHmac('sha256', 'inside').update(push.body).digest('hex'));
  await assert.rejects(fetch(`${forge.url}/api/v1/version`, { signal: AbortSignal.timeout(2_000) }));
});
