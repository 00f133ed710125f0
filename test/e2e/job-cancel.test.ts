// Cancel and force-cancel against the real server, agent and OpenTofu:
// the interrupt reaches the engine, the run ends canceled, the state lock is
// released, nothing of the job keeps running, and the workspace takes the
// next run.
//
// Built-in resources only. An apply is kept busy by a `local-exec`
// provisioner that sleeps; a plan is kept busy by a `terraform_remote_state`
// read from an HTTP endpoint the test holds (OpenTofu waits for the answer,
// then stops at the next safe point). The same held read keeps an apply from
// ever ending on an interrupt, which is what force-cancel is for.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReleaseMirror, zipPath } from '../../src/agent/engines/release-mirror.test-support.ts';
import { startAgent } from '../support/cluster.ts';
import { databaseBackends, type DatabaseBackend } from '../support/postgres.ts';
import type { TestHooks } from '../support/cluster.ts';
import { createRun, getPhase, getRun, getWorkspace, readLog, relatedId, runAction, uploadConfiguration } from '../support/api-calls.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import {
  assertWorkspaceUsable,
  DownloadGate,
  filesUnder,
  HeldEndpoint,
  jobDirectoryPattern,
  killLeftoversAfter,
  planTimeReadConfig,
  processesMatching,
  quickConfig,
  quietHeartbeats,
  sleepingApplyConfig,
  tofuInterruptMessage,
  waitForLog,
  waitForNoProcesses,
} from '../support/job-control.ts';
import { heldCommand, startHeldApply } from '../support/held-apply.ts';



async function startCluster(t: TestHooks, backend: DatabaseBackend, agentEnv: Record<string, string> = {}): Promise<Cluster> {
  return setupCluster(t, backend, { agentEnv, serverEnv: quietHeartbeats });
}



for (const backend of databaseBackends()) {
  test(`cancel during apply interrupts OpenTofu, releases the lock and leaves no process (${backend})`, async (t) => {
    const cluster = await startCluster(t, backend);
    const agent = cluster.agents[0]!;
    const command = heldCommand(t, agent);
    const run = await startHeldApply(cluster, sleepingApplyConfig(command), command);

    await runAction(cluster.server, run.id, 'cancel');
    const canceled = await cluster.waitForRun(run.id, ['canceled']);
    assert.equal(canceled.attributes['error-code'], null, JSON.stringify(canceled.attributes));
    assert.equal((await getPhase(cluster.server, relatedId(run, 'plan'))).attributes.status, 'finished');
    assert.equal((await getPhase(cluster.server, relatedId(run, 'apply'))).attributes.status, 'canceled');

    const applyLog = await readLog(cluster.server, relatedId(run, 'apply'));
    assert.match(applyLog, /received SIGINT: canceling the job/, applyLog);
    assert.match(applyLog, tofuInterruptMessage, applyLog);
    assert.match(applyLog, /the job was canceled/, applyLog);
    // OpenTofu released the lock itself: no complaint about it in the log.
    assert.doesNotMatch(applyLog, /Error releasing the state lock|Failed to unlock state/i, applyLog);

    // OpenTofu kills the provisioner's shell, which orphans its sleep; the
    // agent removes the job's whole process group.
    await waitForNoProcesses(command.pattern, () => cluster.diagnostics(run.id));
    assert.deepEqual(await processesMatching(jobDirectoryPattern(agent)), []);

    await assertWorkspaceUsable(cluster, 'after-cancel');
  });
}

test('cancel during plan stops OpenTofu at the next safe point and releases the lock (sqlite)', async (t) => {
  const cluster = await startCluster(t, 'sqlite');
  const agent = cluster.agents[0]!;
  killLeftoversAfter(t, () => jobDirectoryPattern(agent));
  const endpoint = await HeldEndpoint.start(t);
  const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, planTimeReadConfig(endpoint.url('/held-state')));
  const run = await createRun(cluster.server, cluster.workspace.id, cv);
  const planId = relatedId(run, 'plan');
  // The plan is reading the held state: it is busy and holds the state lock.
  await waitUntil(
    'the plan to read the held state',
    async () => (endpoint.requests.length > 0 ? true : undefined),
    () => cluster.diagnostics(run.id),
  );
  assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'planning');
  assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, true);

  await runAction(cluster.server, run.id, 'cancel');
  await waitForLog(cluster.server, planId, tofuInterruptMessage, () => cluster.diagnostics(run.id));
  // The read finishes; OpenTofu stops instead of going on with the plan.
  endpoint.release();
  await cluster.waitForRun(run.id, ['canceled']);

  const planLog = await readLog(cluster.server, planId);
  assert.match(planLog, /received SIGINT: canceling the job/, planLog);
  assert.match(planLog, /the job was canceled/, planLog);
  assert.doesNotMatch(planLog, /Saved the plan to/, planLog);
  assert.equal((await getPhase(cluster.server, planId)).attributes.status, 'canceled');
  assert.equal((await getPhase(cluster.server, relatedId(run, 'apply'))).attributes.status, 'unreachable');
  await waitForNoProcesses(jobDirectoryPattern(agent), () => cluster.diagnostics(run.id));

  await assertWorkspaceUsable(cluster, 'after-plan-cancel');
});

test('cancel while the agent is still downloading the engine ends the run before the job starts (sqlite)', async (t) => {
  const mirror = await ReleaseMirror.start();
  t.after(() => mirror.close());
  const gate = await DownloadGate.start(t, mirror.url);
  const cluster = await setupCluster(t, 'sqlite', { agents: 0, serverEnv: quietHeartbeats });
  // An agent that can only get OpenTofu through the gate, which holds the zip.
  const agent = await startAgent(cluster.server, {
    token: cluster.pool.token,
    t,
    env: { OUTPOST_AGENT_ENGINE_PATH: '', OUTPOST_AGENT_BINARY_MIRROR: gate.url, PATH: '/usr/bin:/bin' },
  });
  cluster.agents.push(agent);
  killLeftoversAfter(t, () => jobDirectoryPattern(agent));
  const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, quickConfig());
  const run = await createRun(cluster.server, cluster.workspace.id, cv);
  const planId = relatedId(run, 'plan');
  await waitForLog(cluster.server, planId, /Downloading OpenTofu 1\.10\.10/, () => cluster.diagnostics(run.id));
  await waitUntil('the zip download to be held', async () => (gate.held === 1 ? true : undefined), () => cluster.diagnostics(run.id));

  await runAction(cluster.server, run.id, 'cancel');
  await cluster.waitForRun(run.id, ['canceled'], 30_000);
  const planLog = await readLog(cluster.server, planId);
  assert.match(planLog, /The job was canceled before it started: nothing was run\./, planLog);
  assert.doesNotMatch(planLog, /Outpost: fetching job specification/, planLog);
  assert.equal((await getPhase(cluster.server, planId)).attributes.status, 'canceled');
  assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false);

  // The download itself goes on and fills the cache for the next job.
  gate.open();
  const next = await createRun(cluster.server, cluster.workspace.id, cv);
  await cluster.waitForRun(next.id, ['applied']);
  assert.equal(mirror.countOf(zipPath), 1, JSON.stringify(mirror.requests));
  assert.deepEqual(await filesUnder(path.join(agent.dataDir, 'cache', 'binaries')), [path.join('opentofu', '1.10.10', 'tofu')]);
});

/** An apply that a graceful interrupt cannot end: its provisioner sleeps and it waits for a read that is never answered. */
async function startStuckApply(t: TestHooks) {
  const cluster = await startCluster(t, 'sqlite', { OUTPOST_AGENT_KILL_GRACE: '1s' });
  const agent = cluster.agents[0]!;
  const endpoint = await HeldEndpoint.start(t);
  const command = heldCommand(t, agent);
  const config = sleepingApplyConfig(command, { ignoreInterrupt: true, applyTimeStateUrl: endpoint.url('/never-answered') });
  const run = await startHeldApply(cluster, config, command);
  await waitUntil(
    'the apply to read the held state',
    async () => (endpoint.requests.length > 0 ? true : undefined),
    () => cluster.diagnostics(run.id),
  );
  return { cluster, agent, command, run, applyId: relatedId(run, 'apply') };
}

/** Force-cancel: the run ends in the same request, the agent kills the sandbox, the workspace moves on. */
async function forceCancelAndCheck(stuck: Awaited<ReturnType<typeof startStuckApply>>): Promise<void> {
  const { cluster, agent, command, run } = stuck;
  await runAction(cluster.server, run.id, 'force-cancel');
  // The server ends the run in the same request, without waiting for the agent.
  const forced = await getRun(cluster.server, run.id);
  assert.equal(forced.attributes.status, 'force_canceled', JSON.stringify(forced.attributes));
  assert.equal((await getPhase(cluster.server, relatedId(run, 'apply'))).attributes.status, 'canceled');
  assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false);

  // The agent kills the sandbox's process group: OpenTofu and the provisioner.
  await waitForNoProcesses(`${jobDirectoryPattern(agent)}|${command.pattern}`, () => cluster.diagnostics(run.id));
  assert.match(agent.output(), /force-cancel: the sandbox will be killed/, agent.output());
  // Whatever the killed job's agent reports late changes nothing.
  assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'force_canceled');

  await assertWorkspaceUsable(cluster, 'after-force-cancel');
}

test('a plain cancel does not end a job stuck past the interrupt; force-cancel does (sqlite)', async (t) => {
  const stuck = await startStuckApply(t);
  const { cluster, agent, run, applyId } = stuck;

  // OpenTofu is interrupted, kills the provisioner, but keeps waiting for the read.
  await runAction(cluster.server, run.id, 'cancel');
  await waitForLog(cluster.server, applyId, tofuInterruptMessage, () => cluster.diagnostics(run.id));
  await sleep(2_000);
  assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'applying', await cluster.diagnostics(run.id));
  assert.notDeepEqual(await processesMatching(jobDirectoryPattern(agent)), [], 'OpenTofu should still be running');

  await forceCancelAndCheck(stuck);
});

test('force-cancel interrupts, then kills the sandbox process group after OUTPOST_AGENT_KILL_GRACE (sqlite)', async (t) => {
  const stuck = await startStuckApply(t);
  // What the job printed up to the force-cancel stays in the run's log (what
  // comes after is refused: the job is fenced off).
  await waitForLog(stuck.cluster.server, stuck.applyId, /data\.terraform_remote_state\.held: Reading\.\.\./, () =>
    stuck.cluster.diagnostics(stuck.run.id),
  );
  await forceCancelAndCheck(stuck);
  // The agent interrupted first (as for a cancel), then killed once the grace was over.
  const output = stuck.agent.output();
  const lines = output.split('\n');
  const interrupted = lines.findIndex((line) => line.includes('interrupting the job') && line.includes('force_cancel'));
  const killed = lines.findIndex((line) => line.includes('force-cancel: the sandbox will be killed'));
  assert.ok(interrupted >= 0 && killed > interrupted, output);
  assert.match(await readLog(stuck.cluster.server, stuck.applyId), /data\.terraform_remote_state\.held: Reading\.\.\./);
});
