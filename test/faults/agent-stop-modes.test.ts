// What SIGTERM does to an agent with work in hand, for each stop mode
// (OUTPOST_AGENT_WORKER_ON_STOP_ACTION; docs/reliability.md, "Agent
// shutdown"), against the real server, agent and OpenTofu on SQLite:
//
// - drain: the running apply finishes, nothing new is claimed, and a run
//   queued meanwhile goes to an agent started afterwards;
// - drain past its timeout goes on as grace;
// - grace: the job is interrupted (OpenTofu stops at a safe point and saves
//   state) and its sandbox killed after the grace timeout;
// - force: sandboxes are killed at once;
// and in every mode the run says the agent was stopped: an apply errors
// with agent_stopped (never re-run), a plan is queued again, the state lock
// is released, nothing of the job keeps running, and the agent exits 0,
// leaving the pool's list at once unless DISCONNECT_ON_STOP is false.
//
// An apply is held by a local-exec provisioner (waiting for a gate file, or
// sleeping); a plan, and an apply that an interrupt cannot end, by a
// terraform_remote_state read from an HTTP endpoint the test never answers.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { AgentHandle } from '../support/cluster.ts';
import { databaseBackends } from '../support/postgres.ts';
import { createRun, currentStateVersion, downloadState, getPhase, getWorkspace, listAgents, readLog, relatedId, uploadConfiguration, type Run } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import {
  exitCodeOf,
  HeldEndpoint,
  jobDirectoryPattern,
  killLeftoversAfter,
  planTimeReadConfig,
  processesMatching,
  quickConfig,
  sleepingApplyConfig,
  tofuInterruptMessage,
  waitForLog,
  waitForNoProcesses,
} from '../support/job-control.ts';
import { heldCommand, startHeldApply } from '../support/held-apply.ts';


/** An apply whose provisioner waits until `gate` exists: the test decides when it ends. */
function gatedApplyConfig(gate: string, marker: string): Record<string, string> {
  return {
    'main.tf': [
      'resource "terraform_data" "gated" {',
      '  provisioner "local-exec" {',
      `    command = "while [ ! -e '${gate}' ]; do sleep 0.1; done; : ${marker}"`,
      '  }',
      '}',
      '',
    ].join('\n'),
  };
}

/** Starts a run in `workspaceId` and waits until it is in `status`. */
async function startRun(cluster: Cluster, workspaceId: string, files: Record<string, string>, status: 'applying' | 'planning'): Promise<Run> {
  const run = await createRun(cluster.server, workspaceId, await uploadConfiguration(cluster.server, workspaceId, files));
  await cluster.waitForRun(run.id, [status]);
  return run;
}

async function agentStatus(cluster: Cluster, agent: AgentHandle): Promise<string | undefined> {
  return (await listAgents(cluster.server, cluster.pool.id)).find((listed) => listed.attributes.name === agent.name)?.attributes.status;
}

/** The run errored with agent_stopped, its apply is not re-run, its lock is released and its state kept. */
async function assertApplyEndedByStop(cluster: Cluster, run: Run, cause: RegExp): Promise<void> {
  const errored = await cluster.waitForRun(run.id, ['errored']);
  assert.equal(errored.attributes['error-code'], 'agent_stopped', JSON.stringify(errored.attributes));
  const message = String(errored.attributes['error-message']);
  assert.match(message, cause);
  assert.match(message, /during apply; the apply is not retried automatically\. The state the engine saved is kept/);
  assert.equal((await getPhase(cluster.server, relatedId(run, 'apply'))).attributes.status, 'errored');
  assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false, 'the state lock is released');
  const applyLog = await readLog(cluster.server, relatedId(run, 'apply'));
  assert.match(applyLog, /Outpost: the apply was ended by its agent stopping/, applyLog);
}

// Every stop mode on both databases: the server's side of a stop (plan queued again, apply errored, lock released) is SQL.
for (const backend of databaseBackends()) {
  test(`drain: the running apply finishes and applies; a run queued meanwhile waits for an agent started afterwards; the agent leaves the pool (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend);
    const agent = cluster.agents[0]!;
    const gate = path.join(await tempDir(t), 'gate');
    const marker = `outpost-drain-${randomUUID()}`;
    killLeftoversAfter(t, () => `${jobDirectoryPattern(agent)}|${marker}`);
    const held = await startRun(cluster, cluster.workspace.id, gatedApplyConfig(gate, marker), 'applying');
    await waitUntil('the provisioner to wait for the gate', async () => ((await processesMatching(marker)).length > 0 ? true : undefined), () => cluster.diagnostics(held.id));

    agent.process.kill('SIGTERM');
    await waitUntil('the agent to report draining', async () => ((await agentStatus(cluster, agent)) === 'draining' ? true : undefined), () => cluster.diagnostics(held.id));
    // Queued in another workspace of the pool while the only agent drains.
    const other = await cluster.createWorkspace();
    const queued = await createRun(cluster.server, other.id, await uploadConfiguration(cluster.server, other.id, quickConfig('queued')));

    await writeFile(gate, '');
    await cluster.waitForRun(held.id, ['applied']);
    assert.equal(await exitCodeOf(agent), 0, agent.output());
    assert.match(agent.output(), /stopping \(drain\): no new jobs/);
    // DISCONNECT_ON_STOP defaults to true: deregistered, so no longer listed.
    assert.equal(await agentStatus(cluster, agent), undefined, 'the stopped agent is still listed in the pool');
    // The draining agent never took the queued run: it still waits...
    assert.equal((await cluster.waitForRun(queued.id, ['plan_queued'])).attributes.status, 'plan_queued');
    // ...and an agent started afterwards runs it.
    const next = await cluster.startAgent();
    const applied = await cluster.waitForRun(queued.id, ['applied']);
    assert.match(await readLog(cluster.server, relatedId(applied, 'plan')), new RegExp(`Outpost agent ${next.name}: plan job`));
  });

  test(`drain past OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT goes on as grace: the apply is interrupted, errors agent_stopped, its state is kept (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { agentEnv: { OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT: '1s', OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '45s' } });
    const agent = cluster.agents[0]!;
    const command = heldCommand(t, agent);
    const run = await startHeldApply(cluster, sleepingApplyConfig(command), command);

    agent.process.kill('SIGTERM');
    // The interrupt (not a kill: the grace timeout is 45 s) ends the sleeping provisioner and the apply.
    await assertApplyEndedByStop(cluster, run, /was stopped \(grace, the drain timeout of 1 s passed\)/);
    const applyLog = await readLog(cluster.server, relatedId(run, 'apply'));
    assert.match(applyLog, tofuInterruptMessage, applyLog);
    assert.match(applyLog, /is stopping \(the drain timeout of 1 s passed\): interrupting the job/, applyLog);
    assert.equal(await exitCodeOf(agent), 0, agent.output());
    await waitForNoProcesses(`${jobDirectoryPattern(agent)}|${command.pattern}`, () => cluster.diagnostics(run.id));
    const output = agent.output();
    assert.ok(output.indexOf('stopping (drain)') < output.indexOf('stopping (grace)') && output.includes('stopping (grace)'), output);
    // OpenTofu saved the state before it stopped: the half-made resource is kept, tainted.
    const state = await currentStateVersion(cluster.server, cluster.workspace.id);
    assert.ok(state, 'the state the engine saved is kept');
    const saved = await downloadState(cluster.server, state.id);
    const slow = saved.resources.find((resource) => resource.name === 'slow');
    assert.deepEqual(slow?.instances.map((instance) => (instance as { status?: string }).status), ['tainted'], JSON.stringify(saved));
  });

  test(`grace with the Scalr agent's names (SCALR_AGENT_WORKER_ON_STOP_ACTION=grace-shutdown): interrupted, killed after the grace timeout; DISCONNECT_ON_STOP=false leaves it to go offline (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, {
      serverEnv: { OUTPOST_LEASE_TIMEOUT: '5s', OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s' },
      agentEnv: { SCALR_AGENT_WORKER_ON_STOP_ACTION: 'grace-shutdown', SCALR_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '2', SCALR_AGENT_DISCONNECT_ON_STOP: 'false' },
    });
    const agent = cluster.agents[0]!;
    const endpoint = await HeldEndpoint.start(t);
    const command = heldCommand(t, agent);
    // An interrupt cannot end this apply: the provisioner ignores SIGINT and OpenTofu waits for a read never answered.
    const config = sleepingApplyConfig(command, { ignoreInterrupt: true, applyTimeStateUrl: endpoint.url('/never-answered') });
    const run = await startHeldApply(cluster, config, command);

    agent.process.kill('SIGTERM');
    await waitForLog(cluster.server, relatedId(run, 'apply'), tofuInterruptMessage, () => cluster.diagnostics(run.id));
    // Only the kill at the end of the 2 s grace ends it.
    await assertApplyEndedByStop(cluster, run, /was stopped \(force, the grace timeout of 2 s passed\)/);
    await waitForNoProcesses(`${jobDirectoryPattern(agent)}|${command.pattern}`, () => cluster.diagnostics(run.id));
    assert.equal(await exitCodeOf(agent), 0, agent.output());
    assert.match(agent.output(), /not deregistering \(OUTPOST_AGENT_DISCONNECT_ON_STOP=false\)/);
    // Still listed right after it exited; offline once it has missed heartbeats for the lease timeout.
    assert.notEqual(await agentStatus(cluster, agent), undefined, 'an agent that did not deregister stays listed');
    await waitUntil('the silent agent to be offline', async () => ((await agentStatus(cluster, agent)) === 'offline' ? true : undefined), () => cluster.diagnostics(run.id), 30_000);
  });

  test(`force (force-shutdown) kills an apply and a plan at once: the apply errors agent_stopped, the plan is queued again for another agent (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { concurrency: 2, agentEnv: { OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'force-shutdown' } });
    const agent = cluster.agents[0]!;
    const endpoint = await HeldEndpoint.start(t);
    const command = heldCommand(t, agent);
    const config = sleepingApplyConfig(command, { ignoreInterrupt: true, applyTimeStateUrl: endpoint.url('/apply-read') });
    const apply = await startHeldApply(cluster, config, command);
    const other = await cluster.createWorkspace();
    const plan = await startRun(cluster, other.id, planTimeReadConfig(endpoint.url('/plan-read')), 'planning');
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.some((r) => r.includes('/plan-read')) ? true : undefined), () => cluster.diagnostics(plan.id));

    agent.process.kill('SIGTERM');
    // Killed at once: gone long before the 60 s grace timeout (the default) could matter.
    await waitForNoProcesses(`${jobDirectoryPattern(agent)}|${command.pattern}`, () => cluster.diagnostics(apply.id));
    await assertApplyEndedByStop(cluster, apply, /was stopped \(force, received SIGTERM\)/);
    assert.match(await readLog(cluster.server, relatedId(apply, 'apply')), /is stopping \(received SIGTERM\): killing the job now/);
    // A plan changes nothing: it goes back to the queue, not to errored.
    await cluster.waitForRun(plan.id, ['plan_queued']);
    assert.equal(await exitCodeOf(agent), 0, agent.output());
    assert.match(agent.output(), /stopping \(force\): killing the sandboxes of running jobs now/);

    endpoint.release();
    const next = await cluster.startAgent();
    const applied = await cluster.waitForRun(plan.id, ['applied']);
    const planLog = await readLog(cluster.server, relatedId(applied, 'plan'));
    assert.match(planLog, /Outpost: the plan was ended by its agent stopping \(force, received SIGTERM\)/, planLog);
    assert.match(planLog, new RegExp(`Outpost agent ${next.name}: plan job`), planLog);
  });
}
