// The memory guard (docs/reliability.md, "Memory guard") against the real
// server, agent (local driver) and OpenTofu on SQLite: an apply whose
// local-exec provisioner allocates memory steadily is interrupted at the
// soft limit of OUTPOST_AGENT_MEMORY_LIMIT_MB, with a warning in its log;
// OpenTofu stops at a safe point and saves state; the run errors with
// memory_limit (not canceled), the lock is released and nothing is left running.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createRun, currentStateVersion, downloadState, getPhase, getWorkspace, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { jobDirectoryPattern, killLeftoversAfter, quickConfig, waitForNoProcesses } from '../support/job-control.ts';

/** Plans of this configuration peak near 140 MiB (operation and engine): the warning (216 MiB) stays above that. */
const limitMb = 300;

/**
 * A provisioner that allocates (and touches) 5 MiB every 100 ms, up to a cap
 * well above the limit so that a guard that fails cannot take the host down,
 * then holds it. Slow enough that a 100 ms poll sees the warning threshold
 * (between 72 % and 80 % of the limit) before the soft limit. `marker` makes
 * the process findable.
 */
function allocatingApplyConfig(marker: string): Record<string, string> {
  const script = `const held = []; setInterval(() => { if (held.length < 200) held.push(Buffer.alloc(5242880, 1)); }, 100); /* ${marker} */`;
  return {
    'main.tf': [
      'resource "terraform_data" "hungry" {',
      '  provisioner "local-exec" {',
      `    command = "${process.execPath} -e '${script}'"`,
      '  }',
      '}',
      '',
    ].join('\n'),
  };
}

test('the memory guard interrupts an apply at its soft limit: the run errors memory_limit, state saved, lock released, nothing left (sqlite)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', {
    agentEnv: { OUTPOST_AGENT_MEMORY_LIMIT_MB: String(limitMb), OUTPOST_AGENT_MEMORY_MONITOR_INTERVAL: '100ms' },
  });
  const agent = cluster.agents[0]!;
  const marker = `outpost-memory-${randomUUID()}`;
  killLeftoversAfter(t, () => `${jobDirectoryPattern(agent)}|${marker}`);
  const run = await createRun(cluster.server, cluster.workspace.id, await uploadConfiguration(cluster.server, cluster.workspace.id, allocatingApplyConfig(marker)));

  const errored = await cluster.waitForRun(run.id, ['errored'], 120_000);
  assert.equal(errored.attributes['error-code'], 'memory_limit', JSON.stringify(errored.attributes));
  assert.match(String(errored.attributes['error-message']), /reached its memory soft limit \(80 % of 300 MiB.*the state the engine saved is kept/);
  assert.equal((await getPhase(cluster.server, relatedId(run, 'plan'))).attributes.status, 'finished');
  assert.equal((await getPhase(cluster.server, relatedId(run, 'apply'))).attributes.status, 'errored');

  const planLog = await readLog(cluster.server, relatedId(run, 'plan'));
  assert.doesNotMatch(planLog, /Outpost agent: .*memory limit/, planLog);
  const applyLog = await readLog(cluster.server, relatedId(run, 'apply'));
  assert.match(applyLog, /Outpost agent: warning: the job uses \d+ MiB of its 300 MiB memory limit; at the soft limit \(80 %, 240 MiB\) it is interrupted/, applyLog);
  assert.match(applyLog, /Outpost agent: the job uses \d+ MiB of its 300 MiB memory limit \(soft limit 80 %\): interrupting it so the engine can stop at a safe point and save state/, applyLog);
  assert.match(applyLog, /Interrupt received/, applyLog);
  assert.match(applyLog, /\[memory_limit\]/, applyLog);
  assert.match(agent.output(), /memory guard on/, agent.output());

  assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false, 'the state lock is released');
  // OpenTofu saved the state before it stopped: the half-made resource is kept, tainted.
  const state = await currentStateVersion(cluster.server, cluster.workspace.id);
  assert.ok(state, 'the state the engine saved is kept');
  const saved = await downloadState(cluster.server, state.id);
  const hungry = saved.resources.find((resource) => resource.name === 'hungry');
  assert.deepEqual(hungry?.instances.map((instance) => (instance as { status?: string }).status), ['tainted'], JSON.stringify(saved));
  await waitForNoProcesses(`${jobDirectoryPattern(agent)}|${marker}`, () => cluster.diagnostics(run.id));

  // The workspace moves on: a small configuration applies under the same guard.
  const next = await createRun(cluster.server, cluster.workspace.id, await uploadConfiguration(cluster.server, cluster.workspace.id, quickConfig('after-memory')));
  await cluster.waitForRun(next.id, ['applied']);
});
