// Single mode (OUTPOST_AGENT_SINGLE, and the Scalr agent's SCALR_SINGLE with
// SCALR_TOKEN and SCALR_DRIVER): the agent claims one job, runs it with the
// real OpenTofu and exits; what it did not claim stays queued for others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReleaseMirror } from '../../src/agent/engines/release-mirror.test-support.ts';
import { startAgent } from '../support/cluster.ts';
import { apiCall, createRun, getRun, readLog, relatedId, uploadConfiguration, type RunStatus } from '../support/api-calls.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { exitCodeOf, quickConfig } from '../support/job-control.ts';

test('a single-mode agent runs one job and exits 0; the other queued job stays queued (sqlite)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, pool } = cluster;
  const second = await cluster.createWorkspace();
  const runA = await createRun(server, cluster.workspace.id, await uploadConfiguration(server, cluster.workspace.id, quickConfig('a')));
  const runB = await createRun(server, second.id, await uploadConfiguration(server, second.id, quickConfig('b')));
  const statuses = async (): Promise<RunStatus[]> => [
    (await getRun(server, runA.id)).attributes.status,
    (await getRun(server, runB.id)).attributes.status,
  ];
  assert.deepEqual(await statuses(), ['plan_queued', 'plan_queued']);

  const first = await startAgent(server, { token: pool.token, t, env: { OUTPOST_AGENT_SINGLE: 'true' } });
  assert.equal(await exitCodeOf(first), 0, first.output());
  // The oldest queued job was A's plan; A's apply and B's plan now wait.
  assert.deepEqual(await statuses(), ['apply_queued', 'plan_queued'], `${first.output()}\n${await cluster.diagnostics(runA.id)}`);
  assert.match(await readLog(server, relatedId(runA, 'plan')), /Plan: 1 to add/);

  // The Scalr agent's names: SCALR_TOKEN instead of OUTPOST_AGENT_TOKEN.
  const scalrStyle = await startAgent(server, {
    token: pool.token,
    t,
    env: { OUTPOST_AGENT_TOKEN: '', OUTPOST_AGENT_DRIVER: '', SCALR_TOKEN: pool.token, SCALR_SINGLE: 'true', SCALR_DRIVER: 'local' },
  });
  assert.equal(await exitCodeOf(scalrStyle), 0, scalrStyle.output());
  assert.deepEqual(await statuses(), ['apply_queued', 'apply_queued'], `${scalrStyle.output()}\n${await cluster.diagnostics(runB.id)}`);

  // A regular agent takes both applies: the plans made by the single agents are applied.
  await cluster.startAgent();
  await cluster.waitForRun(runA.id, ['applied']);
  await cluster.waitForRun(runB.id, ['applied']);
});

test('a single-mode agent whose job cannot get its engine exits non-zero; the run errors with how to fix it (sqlite)', async (t) => {
  const mirror = await ReleaseMirror.start();
  t.after(() => mirror.close());
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, pool, workspace } = cluster;
  // A version the mirror does not have, and the local binary is 1.10.10.
  await apiCall(
    server,
    'PATCH',
    `/api/v2/workspaces/${workspace.id}`,
    { data: { type: 'workspaces', attributes: { 'terraform-version': '1.10.9' } } },
    200,
  );
  const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig()));

  const agent = await startAgent(server, {
    token: pool.token,
    t,
    env: { OUTPOST_AGENT_SINGLE: 'true', OUTPOST_AGENT_BINARY_MIRROR: mirror.url, PATH: '/usr/bin:/bin' },
  });
  const code = await exitCodeOf(agent);
  assert.notEqual(code, 0, agent.output());
  assert.notEqual(code, null, agent.output());

  const errored = await cluster.waitForRun(run.id, ['errored']);
  assert.equal(errored.attributes['error-code'], 'engine_unavailable', JSON.stringify(errored.attributes));
  const planLog = await readLog(server, relatedId(run, 'plan'));
  assert.match(planLog, /Could not provide OpenTofu 1\.10\.9/, planLog);
  assert.match(planLog, /Not using \S+ \(OUTPOST_AGENT_ENGINE_PATH\): it reports version 1\.10\.10, not 1\.10\.9/, planLog);
  assert.match(planLog, /\(1\) a mirror: make OUTPOST_AGENT_BINARY_MIRROR serve .*tofu_1\.10\.9_linux_amd64\.zip/, planLog);
  assert.match(planLog, /\(2\) a binary: set OUTPOST_AGENT_ENGINE_PATH=\/path\/to\/tofu \(a tofu that reports version 1\.10\.9\)/, planLog);
  assert.match(planLog, /\(3\) a build from source: set OUTPOST_AGENT_ENGINE_BUILD=auto/, planLog);
  assert.match(planLog, /\[engine_unavailable\]/, planLog);
  assert.ok(
    mirror.requests.some((request) => request.startsWith('/opentofu/1.10.9/')),
    `the agent did not ask the mirror: ${JSON.stringify(mirror.requests)}`,
  );
});
