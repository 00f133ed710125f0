// What the control plane does when an agent dies with a job in hand (a
// SIGKILL: no report, no interrupt, heartbeats just stop), against the real
// server, agents and OpenTofu, on SQLite and PostgreSQL (docs/reliability.md,
// "Leases and agent loss"):
//
// - a plan whose agent was lost is queued again once its lease lapses and
//   another agent completes it, with one plan result;
// - an apply whose agent was lost is never re-run: the run errors agent_lost
//   within the lease timeout plus the sweep interval, the state the engine
//   saved before the kill is kept and downloadable, and the state lock is
//   released so the next run applies.
//
// The lease is short (4 s, heartbeats every second, a sweep every 500 ms) so
// the suite is quick; the only timings asserted are the documented bounds.
// AgentHandle.kill() kills the agent alone: the job's sandbox is a process
// group of its own and lives on, so the test kills it too, like a machine
// that went down with its agent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentHandle } from '../support/cluster.ts';
import { databaseBackends } from '../support/postgres.ts';
import { createRun, currentStateVersion, downloadState, getPhase, getRun, getWorkspace, readLog, relatedId, uploadConfiguration, type TofuState } from '../support/api-calls.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import {
  HeldEndpoint,
  jobDirectoryPattern,
  killLeftoversAfter,
  killProcessGroupsMatching,
  planTimeReadConfig,
  processesMatching,
  quickConfig,
  waitForNoProcesses,
  type SleepingCommand,
} from '../support/job-control.ts';
import { heldCommand, startHeldApply } from '../support/held-apply.ts';
import { shortLeaseServerEnv, leaseTimeoutMs, sweepIntervalMs } from '../support/short-lease.ts';

const serverEnv = shortLeaseServerEnv;

/**
 * OpenTofu saves state to the backend mid-apply only when a resource
 * completes at least 20 s (its fixed intermediate-persist interval,
 * internal/backend/local/backend_apply.go) after the first state update, or
 * on an interrupt, never on a SIGKILL. So the second resource takes a bit
 * longer than that: when it completes, the engine pushes a state holding the
 * first two resources, and the third one then sleeps until the kill.
 */
const intermediatePersistSleep = '20.2';

function threeStepApplyConfig(held: SleepingCommand): Record<string, string> {
  return {
    'main.tf': [
      'resource "terraform_data" "first" {',
      '  input = "first"',
      '}',
      '',
      'resource "terraform_data" "second" {',
      '  input = terraform_data.first.output',
      '  provisioner "local-exec" {',
      `    command = "sleep ${intermediatePersistSleep}"`,
      '  }',
      '}',
      '',
      'resource "terraform_data" "held" {',
      '  input = terraform_data.second.output',
      '  provisioner "local-exec" {',
      `    command = "sleep ${held.duration}; : ${held.marker}"`,
      '  }',
      '}',
      '',
    ].join('\n'),
  };
}

/**
 * SIGKILL to the agent, then to the process group of every job it left
 * running (its engines and what they started); waits until none is left.
 */
async function killAgentAndJobs(cluster: Cluster, agent: AgentHandle, extraPattern?: string): Promise<void> {
  await agent.kill();
  await agent.exited;
  const pattern = extraPattern === undefined ? jobDirectoryPattern(agent) : `${jobDirectoryPattern(agent)}|${extraPattern}`;
  await killProcessGroupsMatching(pattern);
  await waitForNoProcesses(pattern, () => cluster.diagnostics());
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, `${pattern.flags}g`))?.length ?? 0;
}

function resourceNames(state: TofuState): string[] {
  return state.resources.map((resource) => resource.name).sort();
}

for (const backend of databaseBackends()) {
  // Proves: a plan is re-queued after its agent's lease lapses and another
  // agent completes it within the lease timeout + 10 s; it is recorded once
  // (one lease-loss re-queue, one plan result in the log and on the plan),
  // and the dead agent's engine, killed before the plan's read was answered,
  // contributed nothing.
  test(`SIGKILL the agent during a plan: another agent completes it within lease timeout + 10 s; exactly one plan result recorded (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { serverEnv, autoApply: false });
    const first = cluster.agents[0]!;
    const endpoint = await HeldEndpoint.start(t);
    killLeftoversAfter(t, () => jobDirectoryPattern(first));
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, planTimeReadConfig(endpoint.url('/plan-read')));
    const run = await createRun(cluster.server, cluster.workspace.id, cv, { autoApply: false });
    await cluster.waitForRun(run.id, ['planning']);
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), () => cluster.diagnostics(run.id));

    const killedAt = Date.now();
    await killAgentAndJobs(cluster, first);
    const readsBefore = endpoint.requests.length;
    const second = await cluster.startAgent();
    killLeftoversAfter(t, () => jobDirectoryPattern(second));
    // Answer only the read of the second agent's engine (the first one's engine is dead).
    await waitUntil(
      'the second agent\'s plan to read the held state',
      async () => (endpoint.requests.length > readsBefore ? true : undefined),
      () => cluster.diagnostics(run.id),
      leaseTimeoutMs + 10_000,
    );
    endpoint.release();
    const planned = await cluster.waitForRun(run.id, ['planned'], leaseTimeoutMs + 10_000);
    const elapsed = Date.now() - killedAt;
    assert.ok(elapsed <= leaseTimeoutMs + 10_000, `planned ${elapsed} ms after the kill, more than the lease timeout + 10 s`);

    assert.equal(planned.attributes['error-code'], null);
    assert.equal(planned.attributes['has-changes'], true);
    const plan = await getPhase(cluster.server, relatedId(planned, 'plan'));
    assert.equal(plan.attributes.status, 'finished');
    assert.equal(plan.attributes['resource-additions'], 1);
    const planLog = await readLog(cluster.server, relatedId(planned, 'plan'));
    // Both agents started the job (the first one's attempt was lost), only the second one finished it.
    assert.equal(count(planLog, new RegExp(`Outpost agent ${first.name}: plan job`)), 1, planLog);
    assert.equal(count(planLog, new RegExp(`Outpost agent ${second.name}: plan job`)), 1, planLog);
    assert.ok(planLog.indexOf(first.name) < planLog.indexOf(second.name), planLog);
    assert.equal(count(planLog, /^Plan: \d+ to add/m), 1, planLog);
    const lost = cluster.server.output().split('\n').filter((line) => line.includes('job lost its agent'));
    assert.equal(lost.length, 1, lost.join('\n'));
    assert.match(lost[0]!, /queued again/);
    assert.match(lost[0]!, /its agent stopped reporting/);
    // Still planned, waiting for a confirmation: no second result moved it on.
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'planned');
  });

  // Proves: an apply whose agent was lost is never re-run: the run errors
  // agent_lost with the lost-during-apply message within the lease timeout
  // plus the sweep interval; the state OpenTofu had pushed before the kill
  // (the first two resources, not the one in progress) is the current state
  // and downloadable; the lock is released, so a new run on a fresh agent
  // locks the workspace and applies.
  test(`SIGKILL the agent during an apply: the run errors with the lost-agent message; the state the engine had saved is downloadable; a new run can lock the workspace (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { serverEnv });
    const first = cluster.agents[0]!;
    const held = heldCommand(t, first);
    const run = await startHeldApply(cluster, threeStepApplyConfig(held), held);
    const saved = await waitUntil(
      'the engine to push the state of the first two resources',
      async () => {
        const version = await currentStateVersion(cluster.server, cluster.workspace.id);
        return version ? { version, state: await downloadState(cluster.server, version.id) } : undefined;
      },
      () => cluster.diagnostics(run.id),
    );
    assert.deepEqual(resourceNames(saved.state), ['first', 'second'], JSON.stringify(saved.state));

    const killedAt = Date.now();
    await killAgentAndJobs(cluster, first, held.pattern);
    const errored = await cluster.waitForRun(run.id, ['errored'], leaseTimeoutMs + sweepIntervalMs + 10_000);
    const elapsed = Date.now() - killedAt;
    // The bound of docs/reliability.md, plus slack for the polling here and the sweep's transaction.
    assert.ok(elapsed <= leaseTimeoutMs + sweepIntervalMs + 3_000, `errored ${elapsed} ms after the kill, more than the lease timeout + sweep interval + 3 s`);
    assert.equal(errored.attributes['error-code'], 'agent_lost', JSON.stringify(errored.attributes));
    assert.match(
      String(errored.attributes['error-message']),
      /the agent was lost during apply \(its agent stopped reporting\); the apply is not retried automatically\. The state saved so far is kept/,
    );
    assert.equal((await getPhase(cluster.server, relatedId(run, 'apply'))).attributes.status, 'errored');
    assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false, 'the state lock is released');

    // The state saved before the kill is the current one, downloadable as the engine wrote it.
    const current = await currentStateVersion(cluster.server, cluster.workspace.id);
    assert.ok(current);
    assert.equal(current.id, saved.version.id);
    const kept = await downloadState(cluster.server, current.id);
    assert.deepEqual(resourceNames(kept), ['first', 'second']);
    assert.equal(kept.serial, saved.state.serial);

    // A new run on a fresh agent takes the lock and applies; the lost apply was not run again.
    const next = await cluster.startAgent();
    killLeftoversAfter(t, () => jobDirectoryPattern(next));
    const after = await createRun(cluster.server, cluster.workspace.id, await uploadConfiguration(cluster.server, cluster.workspace.id, quickConfig('after-kill')));
    const applied = await cluster.waitForRun(after.id, ['applied']);
    assert.match(await readLog(cluster.server, relatedId(applied, 'apply')), /Apply complete!/);
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'errored');
    const final = await currentStateVersion(cluster.server, cluster.workspace.id);
    assert.ok(final && final.attributes.serial > kept.serial, JSON.stringify(final));
    assert.deepEqual(resourceNames(await downloadState(cluster.server, final.id)), ['quick']);
    assert.deepEqual(await processesMatching(held.pattern), []);
  });
}
