// The agent's provider cache end to end, with the real engine, the real
// server and agent, and a real provider served by a local origin registry:
// the second run makes no request to the origin at all; ten jobs initialising
// at once download the package once; an interrupted download or a truncated
// cache file costs a retry, never a broken run; network mirrors are tried in
// order and fall back to the origin; with the cache off the engine downloads
// for itself.
import assert from 'node:assert/strict';
import { readdir, truncate } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startProviderRegistry, type ProviderRegistry } from '../support/provider-registry.ts';
import { createRun, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';

const hostname = 'registry.outpost.test';
const provider = { namespace: 'outpost-test', type: 'simple', versions: ['1.0.0'] };

let origin: ProviderRegistry;
before(async () => {
  origin = await startProviderRegistry({ protocol: 'registry', providers: [provider] });
});
after(() => origin?.close());

/** The agent reaches the origin through its own settings: the registry's CA and its providers.v1 URL. */
function originEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    OUTPOST_AGENT_CA_CERT: origin.caFile,
    OUTPOST_AGENT_PROVIDER_REGISTRY_SERVICES: JSON.stringify({ [hostname]: `${origin.url}/v1/providers/` }),
    ...extra,
  };
}

function lockFile(zh: string): string {
  return [
    `provider "${hostname}/${provider.namespace}/${provider.type}" {`,
    '  version     = "1.0.0"',
    '  constraints = "1.0.0"',
    `  hashes = ["zh:${zh}"]`,
    '}',
    '',
  ].join('\n');
}

function providerConfig(label: string, lock?: string): Record<string, string> {
  return {
    ...(lock === undefined ? {} : { '.terraform.lock.hcl': lock }),
    'main.tf': [
      'terraform {',
      '  required_providers {',
      `    simple = { source = "${hostname}/${provider.namespace}/${provider.type}", version = "1.0.0" }`,
      '  }',
      '}',
      `resource "simple_resource" "x" {\n  value = "${label}"\n}`,
      '',
    ].join('\n'),
  };
}

const zipRequests = () => origin.requests.filter((request) => request.path.endsWith('.zip'));
const versionRequests = () => origin.requests.filter((request) => request.path.endsWith('/versions'));

async function applyRun(cluster: Cluster, workspaceId: string, label: string, lock?: string): Promise<{ plan: string; apply: string }> {
  const run = await createRun(cluster.server, workspaceId, await uploadConfiguration(cluster.server, workspaceId, providerConfig(label, lock)));
  await cluster.waitForRun(run.id, ['applied'], 120_000);
  return { plan: await readLog(cluster.server, relatedId(run, 'plan')), apply: await readLog(cluster.server, relatedId(run, 'apply')) };
}

async function cachedZips(cluster: Cluster): Promise<string[]> {
  const dir = path.join(cluster.agents[0]!.dataDir, 'cache', 'providers', 'packages', hostname, provider.namespace, provider.type, '1.0.0');
  return readdir(dir).catch(() => []);
}

test('the second run gets its provider from the cache: no request reaches the origin (sqlite)', async (t) => {
  origin.clearRequests();
  const cluster = await setupCluster(t, 'sqlite', { agentEnv: originEnv() });
  const first = await applyRun(cluster, cluster.workspace.id, 'first');
  assert.match(first.plan, /providers: from the agent's provider cache/, first.plan);
  assert.match(first.plan, /Installed registry\.outpost\.test\/outpost-test\/simple v1\.0\.0/, first.plan);
  // Plan and apply both ran init; the origin saw one version list and one download.
  assert.equal(zipRequests().length, 1, JSON.stringify(origin.requests));
  assert.equal(versionRequests().length, 1, JSON.stringify(origin.requests));
  assert.ok(origin.requests.some((request) => request.path.endsWith('SHA256SUMS.sig')), 'the signature was fetched to be checked');

  origin.clearRequests();
  const second = await applyRun(cluster, cluster.workspace.id, 'second');
  assert.match(second.apply, /Apply complete!/, second.apply);
  assert.deepEqual(origin.requests, [], 'a warm init must not reach the origin');
});

test('ten jobs initialising at once all succeed and the package is downloaded once (sqlite)', async (t) => {
  origin.clearRequests();
  const cluster = await setupCluster(t, 'sqlite', { agentEnv: originEnv(), concurrency: 10 });
  const workspaces = [cluster.workspace, ...(await Promise.all(Array.from({ length: 9 }, () => cluster.createWorkspace())))];
  const runs = await Promise.all(
    workspaces.map(async (workspace, index) =>
      createRun(cluster.server, workspace.id, await uploadConfiguration(cluster.server, workspace.id, providerConfig(`run-${index}`)), { planOnly: true }),
    ),
  );
  await Promise.all(runs.map((run) => cluster.waitForRun(run.id, ['planned_and_finished'], 180_000)));
  assert.equal(zipRequests().length, 1, JSON.stringify(origin.requests));
  assert.equal(versionRequests().length, 1, JSON.stringify(origin.requests));
});

test('a download cut off halfway is retried and leaves no partial entry (sqlite)', async (t) => {
  origin.clearRequests();
  origin.fault({ path: /\.zip$/, truncateAfterBytes: 100_000 });
  const cluster = await setupCluster(t, 'sqlite', { agentEnv: originEnv() });
  await applyRun(cluster, cluster.workspace.id, 'interrupted');
  assert.deepEqual(zipRequests().map((request) => request.status), [200, 200]);
  assert.ok(zipRequests()[0]!.bytes < zipRequests()[1]!.bytes, 'the first download was cut short');
  assert.deepEqual(await cachedZips(cluster), ['linux_amd64.json', 'linux_amd64.zip']);
  assert.deepEqual(await readdir(path.join(cluster.agents[0]!.dataDir, 'cache', 'providers', '.partial')), []);
});

test('a truncated file in the cache is detected, dropped and fetched again (sqlite)', async (t) => {
  origin.clearRequests();
  const cluster = await setupCluster(t, 'sqlite', { agentEnv: originEnv() });
  await applyRun(cluster, cluster.workspace.id, 'before');
  const zip = path.join(cluster.agents[0]!.dataDir, 'cache', 'providers', 'packages', hostname, provider.namespace, provider.type, '1.0.0', 'linux_amd64.zip');
  await truncate(zip, 1000);
  const logs = await applyRun(cluster, cluster.workspace.id, 'after');
  assert.match(logs.plan, /the cached registry\.outpost\.test\/outpost-test\/simple 1\.0\.0 \(linux_amd64\) was damaged/, logs.plan);
  assert.equal(zipRequests().length, 2, JSON.stringify(origin.requests));
});

test('network mirrors are tried in order; one that fails or lacks the provider falls back to the origin (sqlite)', async (t) => {
  const failing = await startProviderRegistry({ protocol: 'mirror', providers: [provider] });
  const lacking = await startProviderRegistry({ protocol: 'mirror', providers: [{ ...provider, namespace: 'someone-else' }] });
  const serving = await startProviderRegistry({ protocol: 'mirror', providers: [provider] });
  t.after(() => Promise.all([failing.close(), lacking.close(), serving.close()]));
  failing.fault({ path: /./, status: 500, times: 1000 });
  const mirrors = (list: ProviderRegistry[]) => JSON.stringify(list.map((mirror) => ({ url: `${mirror.url}/` })));
  const bundle = [origin, failing, lacking, serving].map((server) => server.caPem).join('\n');

  origin.clearRequests();
  const viaOrigin = await setupCluster(t, 'sqlite', { agentEnv: originEnv({ OUTPOST_AGENT_CA_CERT: bundle, OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS: mirrors([failing, lacking]) }) });
  const logs = await applyRun(viaOrigin, viaOrigin.workspace.id, 'fallback');
  assert.ok(failing.requests.length > 0 && lacking.requests.length > 0, 'both mirrors were asked first');
  assert.equal(zipRequests().length, 1, 'the origin served the package');
  assert.match(logs.plan, /network mirror https:\/\/localhost:\d+\/: .*HTTP 500.*; used origin registry instead/, logs.plan);

  origin.clearRequests();
  const viaMirror = await setupCluster(t, 'sqlite', { agentEnv: originEnv({ OUTPOST_AGENT_CA_CERT: bundle, OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS: mirrors([serving]) }) });
  await applyRun(viaMirror, viaMirror.workspace.id, 'mirror');
  assert.ok(serving.requests.some((request) => request.path.endsWith('.zip')), JSON.stringify(serving.requests));
  assert.deepEqual(origin.requests, [], 'the mirror answered: the origin is not asked');
});

test('with the provider cache off, the engine downloads from the origin itself (sqlite)', async (t) => {
  origin.clearRequests();
  const cluster = await setupCluster(t, 'sqlite', {
    // Without the plan's directory kept for the apply, the apply runs its own init.
    agentEnv: originEnv({ OUTPOST_AGENT_PROVIDER_CACHE_ENABLED: 'false', SSL_CERT_FILE: origin.caFile, OUTPOST_AGENT_PLAN_WORKDIR_TTL: '0' }),
  });
  const logs = await applyRun(cluster, cluster.workspace.id, 'direct');
  assert.match(logs.plan, /providers: the engine downloads them/, logs.plan);
  assert.match(logs.apply, /Outpost: running tofu init/, logs.apply);
  assert.equal(zipRequests().length, 2, 'plan and apply each downloaded the provider');
  assert.deepEqual(await cachedZips(cluster), []);
});

test('the configuration\'s lock file still binds: a package not matching its hashes fails the run (sqlite)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agentEnv: originEnv() });
  const locked = lockFile(origin.packageSha256(provider.namespace, provider.type, '1.0.0'));
  const logs = await applyRun(cluster, cluster.workspace.id, 'locked', locked);
  assert.match(logs.apply, /Apply complete!/, logs.apply);

  const wrong = lockFile('0'.repeat(64));
  const run = await createRun(cluster.server, cluster.workspace.id, await uploadConfiguration(cluster.server, cluster.workspace.id, providerConfig('wrong', wrong)));
  await cluster.waitForRun(run.id, ['errored'], 120_000);
  const plan = await readLog(cluster.server, relatedId(run, 'plan'));
  assert.match(plan, /checksum|does not match/i, plan);
});
