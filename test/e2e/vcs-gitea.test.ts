// VCS-driven workspaces against a real forge (Gitea, built from its Go
// module) on loopback: a push to the workspace's branch runs a plan and an
// apply of exactly that commit, a pull request gets a speculative plan and
// commit statuses on the forge, a redelivered webhook queues nothing twice,
// forged, unsigned, oversized and misaddressed webhooks are refused with a
// code, and a push that touches no trigger path starts nothing.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../support/cli-runner.ts';
import { quickConfig } from '../support/job-control.ts';
import { giteaForTests, startGitea, type Gitea } from '../support/gitea.ts';
import { databaseBackends } from '../support/postgres.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { createVcsProvider, linkRepository, startWebhookRecorder, vcsTriggers, waitForRunOfCommit, workspaceRuns } from '../support/vcs-calls.ts';
import { waitUntil } from '../support/waits.ts';
import type { TestHooks } from '../support/cluster.ts';

const gitea = giteaForTests('run the version control tests against Gitea');
const fastVcs = { OUTPOST_VCS_INTERVAL: '200ms' };

async function startForge(t: TestHooks): Promise<Gitea> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-gitea-'));
  const forge = await startGitea({ binary: gitea.binary!, dir });
  t.after(async () => {
    await forge.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return forge;
}

async function statusesOf(forge: Gitea, repo: string, sha: string, wanted: (states: string[]) => boolean): Promise<string[]> {
  return waitUntil(
    `commit statuses of ${sha.slice(0, 12)}`,
    async () => {
      const states = (await forge.commitStatuses(repo, sha)).map((status) => `${status.state}: ${status.description}`);
      return wanted(states) ? states : undefined;
    },
    async () => JSON.stringify(await forge.commitStatuses(repo, sha)),
    60_000,
  );
}

for (const backend of databaseBackends()) {
  test(`a push runs the commit, a pull request gets a speculative plan and commit statuses, a redelivery queues nothing (${backend})`, { skip: gitea.skip }, async (t) => {
    const forge = await startForge(t);
    const cluster = await setupCluster(t, backend, { serverEnv: fastVcs });
    const { server, workspace } = cluster;
    const repo = await forge.createRepo('infra');
    await forge.pushFiles(repo.fullName, 'main', quickConfig('first'), 'First configuration');

    const provider = await createVcsProvider(server, { name: 'gitea', kind: 'gitea', 'http-url': forge.url, token: forge.token });
    assert.match(provider.webhookSecret, /^opv_/);
    // Secrets are write-only: reading the provider shows neither the token nor the webhook secret.
    const shown = JSON.stringify(await server.api('GET', `/api/v2/vcs-providers/${provider.id}`));
    assert.ok(!shown.includes(forge.token) && !shown.includes(provider.webhookSecret), shown);
    // Before linking: the credentials work for git and for the forge's API.
    const check = await server.api<{ data: { attributes: Record<string, unknown> } }>('POST', `/api/v2/vcs-providers/${provider.id}/actions/check`, { repository: repo.fullName });
    assert.equal(check.status, 200, JSON.stringify(check.body));
    assert.deepEqual([check.body.data.attributes['default-branch'], check.body.data.attributes.branches], ['main', 1]);
    const missing = await server.api<{ errors: { code: string }[] }>('POST', `/api/v2/vcs-providers/${provider.id}/actions/check`, { repository: `${forge.username}/does-not-exist` });
    assert.equal(missing.body.errors[0]!.code, 'vcs_fetch_failed', JSON.stringify(missing.body));
    const linked = await linkRepository(server, workspace.id, { 'vcs-repo': { identifier: repo.fullName, branch: 'main', 'vcs-provider-id': provider.id } });
    assert.equal(linked.attributes['vcs-repo']?.identifier, repo.fullName);

    const recorder = await startWebhookRecorder(t, provider.webhookUrl!);
    await forge.addWebhook(repo.fullName, { url: recorder.url, secret: provider.webhookSecret });

    // A push to the branch: a run of that very commit, applied (the workspace auto-applies).
    const pushed = await forge.pushFiles(repo.fullName, 'main', quickConfig('second'), 'Second configuration\n\nWith a body.', { author: { name: 'Ada Lovelace', email: 'ada@example.com' } });
    const run = await waitForRunOfCommit(server, workspace.id, pushed);
    const applied = (await cluster.waitForRun(run.id, ['applied'])).attributes;
    const ingress = run.attributes['ingress-attributes']!;
    assert.deepEqual(
      { branch: ingress.branch, author: ingress['commit-author'], message: ingress['commit-message'].split('\n')[0], pr: ingress['is-pull-request'], source: run.attributes.source },
      { branch: 'main', author: 'Ada Lovelace', message: 'Second configuration', pr: false, source: 'tfe-configuration-version' },
    );
    assert.match(run.attributes.message ?? '', /Second configuration/);
    const pushStatuses = await statusesOf(forge, repo.fullName, pushed, (states) => states.some((s) => s.startsWith('success')));
    assert.ok(pushStatuses.some((s) => s.startsWith('pending')), `a pending status came first: ${pushStatuses.join(' | ')}`);
    // What the forge shows for the commit: the newest status of the context.
    const combined = await forge.api<{ state: string; statuses: { context: string; description: string; target_url: string }[] }>('GET', `/repos/${repo.fullName}/commits/${pushed}/status`);
    const [latest] = combined.statuses;
    assert.equal(`${combined.state}: ${latest!.description}`, `success: Applied: ${applied['resource-additions']} added, ${applied['resource-changes']} changed, 0 destroyed`, pushStatuses.join(' | '));
    assert.equal(latest!.context, `outpost/${workspace.attributes.name}`);
    assert.ok(latest!.target_url.endsWith(`/runs/${run.id}`), latest!.target_url);

    // The same delivery again (a forge's "redeliver"): recorded once, nothing queued twice.
    const pushDelivery = recorder.received.find((hook) => hook.headers['x-gitea-event'] === 'push' && hook.body.includes(pushed))!;
    const again = await recorder.replay(pushDelivery);
    assert.equal(again.status, 200, again.body);
    assert.match(again.body, /duplicate/);
    assert.equal((await workspaceRuns(server, workspace.id)).filter((r) => r.attributes['ingress-attributes']?.['commit-sha'] === pushed).length, 1);

    // A pull request against main: a speculative (plan-only) run that never holds the workspace, and statuses on its head commit.
    const head = await forge.pushFiles(repo.fullName, 'feature', quickConfig('third'), 'Try a third label', { from: 'main' });
    const pull = await forge.createPullRequest(repo.fullName, { head: 'feature', base: 'main', title: 'Third label' });
    const speculative = await waitForRunOfCommit(server, workspace.id, head, { pullRequest: true });
    assert.equal(speculative.attributes['plan-only'], true);
    assert.equal(speculative.attributes['ingress-attributes']?.['pull-request-number'], pull.number);
    const planned = await cluster.waitForRun(speculative.id, ['planned_and_finished']);
    assert.equal(planned.attributes['has-changes'], true);
    const prStatuses = await statusesOf(forge, repo.fullName, head, (states) => states.some((s) => s.startsWith('success')));
    assert.ok(prStatuses.some((s) => s === `success: Plan: ${planned.attributes['resource-additions']} to add, ${planned.attributes['resource-changes']} to change, 0 to destroy`), prStatuses.join(' | '));
    assert.ok(prStatuses.some((s) => s.startsWith('pending')), prStatuses.join(' | '));

    // Trigger patterns: a push that changes nothing under infra/ starts no run; the workspace says why.
    await linkRepository(server, workspace.id, { 'trigger-patterns': ['infra/**'] });
    const readmeOnly = await forge.pushFiles(repo.fullName, 'main', { 'README.md': 'docs only\n' }, 'Document the repository');
    const skipped = await waitUntil(
      'the README push to be skipped',
      async () => (await vcsTriggers(server, workspace.id)).find((trigger) => trigger.attributes['commit-sha'] === readmeOnly && trigger.attributes.status === 'skipped'),
      async () => JSON.stringify(await vcsTriggers(server, workspace.id)),
      60_000,
    );
    assert.match(skipped.attributes.reason ?? '', /README\.md|trigger/);
    assert.equal((await workspaceRuns(server, workspace.id)).filter((r) => r.attributes['ingress-attributes']?.['commit-sha'] === readmeOnly).length, 0);
  });
}

test('webhooks that are unsigned, wrongly signed, too large, for an unknown provider or repository are refused with a code', { skip: gitea.skip }, async (t) => {
  const forge = await startForge(t);
  const cluster = await setupCluster(t, 'sqlite', { agents: 0, serverEnv: { ...fastVcs, OUTPOST_VCS_WEBHOOK_MAX_KB: '64' } });
  const { server, workspace } = cluster;
  const repo = await forge.createRepo('refusals');
  await forge.pushFiles(repo.fullName, 'main', quickConfig('x'), 'Configuration');
  const provider = await createVcsProvider(server, { name: 'gitea', kind: 'gitea', 'http-url': forge.url, token: forge.token });
  await linkRepository(server, workspace.id, { 'vcs-repo': { identifier: repo.fullName, branch: 'main', 'vcs-provider-id': provider.id } });
  const recorder = await startWebhookRecorder(t, provider.webhookUrl!);
  await forge.addWebhook(repo.fullName, { url: recorder.url, secret: provider.webhookSecret });
  await forge.pushFiles(repo.fullName, 'main', quickConfig('y'), 'Another commit');
  const real = await waitUntil('a push delivery', async () => recorder.received.find((hook) => hook.headers['x-gitea-event'] === 'push'), () => 'none yet', 30_000);

  const sign = (body: Buffer, secret: string) => createHmac('sha256', secret).update(body).digest('hex');
  const refused = async (what: string, headers: Record<string, string>, body: Buffer, url: string, status: number, code: string) => {
    const response = await fetch(url, { method: 'POST', headers, body: new Uint8Array(body) });
    const text = await response.text();
    assert.equal(response.status, status, `${what}: ${text}`);
    assert.equal((JSON.parse(text) as { errors: { code: string }[] }).errors[0]!.code, code, what);
  };
  const { 'x-gitea-signature': _signature, 'x-hub-signature-256': _hub, 'x-hub-signature': _old, ...unsigned } = real.headers;
  await refused('unsigned', unsigned, real.body, provider.webhookUrl!, 401, 'signature_missing');
  await refused('signed with another secret', { ...unsigned, 'x-gitea-signature': sign(real.body, 'opv_not-the-secret') }, real.body, provider.webhookUrl!, 401, 'signature_invalid');
  // Whitespace is enough: the signature covers the exact bytes.
  const tampered = Buffer.concat([real.body, Buffer.from(' ')]);
  await refused('a tampered body', real.headers, tampered, provider.webhookUrl!, 401, 'signature_invalid');
  await refused('an unknown provider', real.headers, real.body, provider.webhookUrl!.replace(provider.id, 'vcs-unknown00000000'), 404, 'not_found');
  const otherRepo = Buffer.from(real.body.toString('utf8').replaceAll(repo.fullName, `${forge.username}/not-linked`));
  await refused('an unknown repository', { ...unsigned, 'x-gitea-signature': sign(otherRepo, provider.webhookSecret) }, otherRepo, provider.webhookUrl!, 404, 'not_found');
  const huge = Buffer.alloc(65 * 1024 + 1, 'a');
  await refused('too large', { ...unsigned, 'x-gitea-signature': sign(huge, provider.webhookSecret) }, huge, provider.webhookUrl!, 413, 'payload_too_large');
  await refused('not JSON', { ...unsigned, 'x-gitea-signature': sign(Buffer.from('{nope'), provider.webhookSecret) }, Buffer.from('{nope'), provider.webhookUrl!, 400, 'invalid_request');
  // None of them was recorded as a delivery or queued anything beyond the real push.
  const deliveries = (await server.api<{ data: unknown[] }>('GET', `/api/v2/vcs-providers/${provider.id}/deliveries`)).body.data;
  assert.equal(deliveries.length, recorder.received.filter((hook) => hook.headers['x-gitea-event'] === 'push').length);
});

test('the CLI as a user runs it: a provider with the token from stdin, a check, a link, and the commit on the run', { skip: gitea.skip }, async (t) => {
  const forge = await startForge(t);
  const cluster = await setupCluster(t, 'sqlite', { serverEnv: fastVcs });
  const { server, workspace } = cluster;
  const repo = await forge.createRepo('cli');
  await forge.pushFiles(repo.fullName, 'main', quickConfig('cli-1'), 'First');

  const created = await runCli(t, server, ['vcs', 'provider', 'create', 'forge', '--kind', 'gitea', '--http-url', forge.url, '--token-stdin'], { input: forge.token });
  assert.equal(created.code, 0, created.stderr);
  const secret = created.stdout.trim().split('\n').at(-1)!;
  assert.match(secret, /^opv_/, 'the webhook secret is stdout\'s last line');
  assert.ok(!created.stdout.includes(forge.token) && !created.stderr.includes(forge.token), 'the forge token is never printed');
  const shown = await runCli(t, server, ['vcs', 'provider', 'show', 'forge', '--json']);
  const provider = JSON.parse(shown.stdout) as { id: string; attributes: { 'webhook-url': string } };

  const check = await runCli(t, server, ['vcs', 'provider', 'check', 'forge', '--repository', repo.fullName]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /Default branch:\s+main/);
  const refused = await runCli(t, server, ['vcs', 'provider', 'check', 'forge', '--repository', `${forge.username}/missing`]);
  assert.equal(refused.code, 3, refused.stdout);
  assert.match(refused.stderr, /vcs_fetch_failed/);

  const linked = await runCli(t, server, ['workspace', 'repo', 'set', workspace.attributes.name, '--provider', 'forge', '--repository', repo.fullName, '--branch', 'main']);
  assert.equal(linked.code, 0, linked.stderr);
  await forge.addWebhook(repo.fullName, { url: provider.attributes['webhook-url'], secret });
  const sha = await forge.pushFiles(repo.fullName, 'main', quickConfig('cli-2'), 'Second, from the CLI test');
  const run = await waitForRunOfCommit(server, workspace.id, sha);
  await cluster.waitForRun(run.id, ['applied']);

  const runShow = await runCli(t, server, ['run', 'show', run.id]);
  assert.equal(runShow.code, 0, runShow.stderr);
  assert.ok(runShow.stdout.includes(sha.slice(0, 12)) && runShow.stdout.includes('Second, from the CLI test'), runShow.stdout);
  const repoShow = await runCli(t, server, ['workspace', 'repo', 'show', workspace.attributes.name]);
  assert.equal(repoShow.code, 0, repoShow.stderr);
  assert.ok(repoShow.stdout.includes(repo.fullName) && repoShow.stdout.includes(sha.slice(0, 12)) && repoShow.stdout.includes(run.id), repoShow.stdout);
});
