// Single mode (OUTPOST_AGENT_SINGLE, and the Scalr agent's SCALR_SINGLE with
// SCALR_TOKEN and SCALR_DRIVER): the agent claims one job, runs it with the
// real OpenTofu and exits with a code that says how the job ended; what it
// did not claim stays queued for others. Started for one job (the pool
// webhook's), it runs that one; with nothing to run, it exits after its
// idle timeout. The token may come from a file.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { ReleaseMirror } from '../../src/agent/engines/release-mirror.test-support.ts';
import { startAgent, type ServerHandle } from '../support/cluster.ts';
import { tempDir } from '../support/files.ts';
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

test('a single-mode agent whose job cannot get its engine exits 1; the run errors with how to fix it (sqlite)', async (t) => {
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
  // 1: the job could not run (the agent's own failure is 1 too; 4 would say the engine ran and failed).
  assert.equal(await exitCodeOf(agent), 1, agent.output());

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

/** The id of a run's queued plan job, from the server's database (the API shows jobs only in the pool webhook's payload). */
function queuedPlanJobId(server: ServerHandle, runId: string): string {
  const db = new DatabaseSync(path.join(server.dataDir, 'outpost.db'), { readOnly: true });
  try {
    const row = db.prepare("select id from jobs where run_id = ? and kind = 'plan' and status = 'queued'").get(runId) as { id: string } | undefined;
    assert.ok(row, `run ${runId} has no queued plan job`);
    return row.id;
  } finally {
    db.close();
  }
}

test('a single-mode agent started for one job runs that job, not the oldest; the token may come from a file (sqlite)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, pool } = cluster;
  const second = await cluster.createWorkspace();
  const runA = await createRun(server, cluster.workspace.id, await uploadConfiguration(server, cluster.workspace.id, quickConfig('a')));
  const runB = await createRun(server, second.id, await uploadConfiguration(server, second.id, quickConfig('b')));
  const dir = await tempDir(t, 'outpost-token-');
  const tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, `${pool.token}\n`, { mode: 0o600 });
  const planJobId = queuedPlanJobId(server, runB.id);

  const agent = await startAgent(server, {
    token: pool.token,
    t,
    env: { OUTPOST_AGENT_TOKEN: '', OUTPOST_AGENT_TOKEN_FILE: tokenFile, OUTPOST_SINGLE: 'true', OUTPOST_AGENT_JOB_ID: planJobId },
  });
  assert.equal(await exitCodeOf(agent), 0, agent.output());
  assert.equal((await getRun(server, runB.id)).attributes.status, 'apply_queued', agent.output());
  assert.equal((await getRun(server, runA.id)).attributes.status, 'plan_queued', 'the older run was left for others');
  assert.doesNotMatch(agent.output(), new RegExp(pool.token), 'the token is never logged');

  // Started again for the same job (a webhook delivered twice): the job has ended, and the
  // control plane says so, so the agent exits with 6 at once rather than idling until its timeout.
  const late = await startAgent(server, { token: pool.token, t, env: { OUTPOST_AGENT_SINGLE: 'true', OUTPOST_AGENT_JOB_ID: planJobId } });
  assert.equal(await exitCodeOf(late), 6, late.output());
  assert.match(late.output(), new RegExp(`single mode: job ${planJobId} has ended \\(succeeded\\); exiting`));
});

test('a single-mode agent with nothing to run exits 6 after its idle timeout; one whose plan fails exits 4 (sqlite)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, pool, workspace } = cluster;
  const idle = await startAgent(server, { token: pool.token, t, env: { OUTPOST_AGENT_SINGLE: 'true', OUTPOST_AGENT_SINGLE_IDLE_TIMEOUT: '2s' } });
  assert.equal(await exitCodeOf(idle), 6, idle.output());
  assert.match(idle.output(), /single mode: no job was queued within OUTPOST_AGENT_SINGLE_IDLE_TIMEOUT; exiting/);

  const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, { 'main.tf': 'resource "terraform_data" "broken" {\n  input = undefined_reference\n}\n' }));
  const failing = await startAgent(server, { token: pool.token, t, env: { OUTPOST_AGENT_SINGLE: 'true' } });
  assert.equal(await exitCodeOf(failing), 4, failing.output());
  assert.equal((await cluster.waitForRun(run.id, ['errored'])).attributes.status, 'errored');
});

test('a single-mode agent with an unreadable token file or a job id without single mode refuses to start (exit 2)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, pool } = cluster;
  const missing = await startAgent(server, { token: pool.token, t, env: { OUTPOST_AGENT_TOKEN: '', OUTPOST_AGENT_TOKEN_FILE: '/nonexistent/outpost-token', OUTPOST_AGENT_SINGLE: 'true' } });
  assert.equal(await exitCodeOf(missing), 2, missing.output());
  assert.match(missing.output(), /OUTPOST_AGENT_TOKEN_FILE=\/nonexistent\/outpost-token: cannot read it \(ENOENT\)/);
  const notSingle = await startAgent(server, { token: pool.token, t, env: { OUTPOST_AGENT_JOB_ID: 'job-abc123' } });
  assert.equal(await exitCodeOf(notSingle), 2, notSingle.output());
  assert.match(notSingle.output(), /OUTPOST_AGENT_JOB_ID=job-abc123 names the one job to run, which only a single-mode agent does/);
});
