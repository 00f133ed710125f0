// The VCS agent: a forge the control plane cannot reach (Gitea inside a
// network namespace the test makes, which the server is not in) is served
// through an agent of a `vcs` pool started inside that namespace with only
// its pool token. Until the agent connects, the workspace says what it
// waits for; then the forge's webhook (sent to the agent's local listener),
// the commit's contents and the commit statuses all go over the agent's own
// connection, and a tripwire on the forge's address in the server's network
// proves the server never tried to connect to the forge.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { apiCall, createPool, getWorkspace } from '../support/api-calls.ts';
import { startAgent } from '../support/cluster.ts';
import { giteaForTests, startGitea } from '../support/gitea.ts';
import { quickConfig } from '../support/job-control.ts';
import { createNetns, netnsForTests } from '../support/netns.ts';
import { freePort } from '../support/ports.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { createVcsProvider, linkRepository, waitForRunOfCommit } from '../support/vcs-calls.ts';
import { waitUntil } from '../support/waits.ts';

const gitea = giteaForTests('run the VCS agent test against Gitea');
const netns = netnsForTests('run the VCS agent test in a network namespace');

test('a VCS agent relays a forge only it can reach: webhooks, commits and statuses over its own connection', { skip: gitea.skip || netns.skip }, async (t) => {
  // Torn down last made, first: the forge before its namespace (t.after hooks run in the order they were added).
  const teardown: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const step of teardown.reverse()) await step();
  });
  const ns = await createNetns(`outpost-vcs-${process.pid}-${randomBytes(3).toString('hex')}`);
  teardown.push(() => ns.destroy());
  // The forge's address inside the namespace, also watched in the server's network: any connection there is the server trying to reach it.
  const forgePort = await freePort();
  const tripwire = { connections: 0 };
  const watcher = net.createServer((socket) => {
    tripwire.connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => watcher.listen(forgePort, '127.0.0.1', resolve));
  teardown.push(() => new Promise<void>((resolve) => watcher.close(() => resolve())));

  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-gitea-ns-'));
  const forge = await startGitea({ binary: gitea.binary!, dir, netns: ns.name, port: forgePort });
  teardown.push(async () => {
    await forge.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const repo = await forge.createRepo('behind-the-firewall');
  await forge.pushFiles(repo.fullName, 'main', quickConfig('first'), 'First configuration');

  const cluster = await setupCluster(t, 'sqlite', { listenHost: '0.0.0.0', serverEnv: { OUTPOST_VCS_INTERVAL: '200ms' } });
  const { server, workspace } = cluster;
  const relayPool = await apiCall<{ data: { id: string; attributes: { kind: string } } }>(server, 'POST', '/api/v2/organizations/default/agent-pools', { data: { type: 'agent-pools', attributes: { name: 'vcs-relay', kind: 'vcs' } } }, 201);
  assert.equal(relayPool.data.attributes.kind, 'vcs');
  const relayToken = await apiCall<{ data: { attributes: { token: string } } }>(server, 'POST', `/api/v2/agent-pools/${relayPool.data.id}/authentication-tokens`, { data: { type: 'authentication-tokens', attributes: { description: 'vcs agent' } } }, 201);

  // A runner pool cannot relay.
  const runners = await createPool(server, 'runners-only');
  const refused = await server.api('POST', '/api/v2/organizations/default/vcs-providers', { data: { type: 'vcs-providers', attributes: { name: 'x', kind: 'gitea', 'http-url': forge.url, 'agent-pool-id': runners.id } } });
  assert.equal(refused.status, 422);

  const provider = await createVcsProvider(server, { name: 'inside', kind: 'gitea', 'http-url': forge.url, token: forge.token, 'agent-pool-id': relayPool.data.id });
  assert.equal(provider.webhookUrl, null, 'the forge sends its webhooks to the agent, not to the server');
  await linkRepository(server, workspace.id, { 'vcs-repo': { identifier: repo.fullName, 'vcs-provider-id': provider.id } });

  // No VCS agent yet: the work waits, and the workspace says why.
  const waiting = await waitUntil('the workspace to say it waits for a VCS agent', async () => (await getWorkspace(server, workspace.id)).attributes['vcs-status'] ?? undefined, () => server.output().slice(-3000), 30_000);
  assert.match(waiting, /no agent of pool vcs-relay is connected/);
  const early = await server.api<{ errors: { code: string; detail: string }[] }>('POST', `/api/v2/vcs-providers/${provider.id}/actions/check`, { repository: repo.fullName });
  assert.deepEqual([early.status, early.body.errors[0]!.code], [503, 'unavailable']);

  // The agent, as the Scalr agent's guide starts one: only its token (and where the server is, from inside the namespace).
  const serverPort = new URL(server.url).port;
  const webhookPort = 8088;
  const agent = await startAgent(
    { url: `http://${ns.hostAddress}:${serverPort}` },
    { token: relayToken.data.attributes.token, t, wrapper: ns.exec([]), env: { OUTPOST_AGENT_VCS_WEBHOOK_PORT: String(webhookPort), OUTPOST_AGENT_VCS_WEBHOOK_HOST: '127.0.0.1' } },
  );
  await waitUntil('the default branch, read through the agent', async () => ((await getWorkspace(server, workspace.id)).attributes['vcs-repo']?.branch === 'main' ? true : undefined), () => `${agent.output()}\n${server.output().slice(-3000)}`, 60_000);
  assert.equal((await getWorkspace(server, workspace.id)).attributes['vcs-status'], null);
  // The forge's API, read by the agent on the server's behalf.
  const check = await server.api<{ data: { attributes: Record<string, unknown> } }>('POST', `/api/v2/vcs-providers/${provider.id}/actions/check`, { repository: repo.fullName });
  assert.equal(check.status, 200, JSON.stringify(check.body));
  assert.equal(check.body.data.attributes['default-branch'], 'main');

  // The forge's webhook goes to the agent's listener inside the namespace; the agent forwards it.
  await forge.addWebhook(repo.fullName, { url: `http://127.0.0.1:${webhookPort}/webhooks/${provider.id}`, secret: provider.webhookSecret });
  const sha = await forge.pushFiles(repo.fullName, 'main', quickConfig('second'), 'Second configuration');
  const run = await waitForRunOfCommit(server, workspace.id, sha);
  await cluster.waitForRun(run.id, ['applied']);
  assert.equal(run.attributes['ingress-attributes']?.['commit-message'], 'Second configuration');
  const statuses = await waitUntil(
    'the success status, posted by the agent',
    async () => {
      const combined = await forge.api<{ state: string; statuses: { description: string }[] }>('GET', `/repos/${repo.fullName}/commits/${sha}/status`);
      return combined.state === 'success' ? combined : undefined;
    },
    () => agent.output().slice(-3000),
    60_000,
  );
  assert.match(statuses.statuses[0]!.description, /^Applied/);

  // Everything went through the agent: it did the tasks, and nothing from the server's network reached the forge's address.
  assert.match(agent.output(), /VCS task done/);
  assert.match(agent.output(), /"kind":"fetch"/);
  assert.equal(tripwire.connections, 0, 'the server never connected to the forge');
});
