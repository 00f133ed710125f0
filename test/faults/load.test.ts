// Load (docs/reliability.md): 200 auto-applied runs
// across 20 workspaces and 5 agents with 4 slots each, against the real
// server, agents and OpenTofu. Each run's configuration is one
// terraform_data whose input is the run's number. Runs are submitted fast:
// the 20 workspaces in parallel, each one's 10 runs back to back in order.
//
// Proves, for every run and workspace:
// - every run reaches a final state, and it is `applied`;
// - none ran twice: each of the 400 jobs was claimed once (not counting a
//   claim handed straight back because the polling agent had gone), each
//   plan and apply log holds one agent's start line and one result, and no
//   job lost its agent;
// - each workspace's runs were applied in creation order: its state
//   versions, sorted by serial, come from its runs in the order they were
//   created, the serial rising by exactly one per run, and each run started
//   planning only after the previous one was applied; the final state holds
//   the last run's number.
// No timing is asserted; the elapsed time is printed, to watch on CI. On a
// 2-core machine one backend takes 2-2.5 min (set-up and submission
// 13-27 s, the runs 1.5-2.3 min) and the pair 3.7-4.9 min, so it runs on both
// SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { databaseBackends } from '../support/postgres.ts';
import { apiCall, createRun, downloadState, listStateVersions, readLog, relatedId, uploadConfiguration, type Run, type Workspace } from '../support/api-calls.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { isFinal, waitUntil } from '../support/waits.ts';
import { relatedId as relatedIdOrUndefined } from '../../src/protocol/api-resources.ts';
import { logEntries } from '../support/log-entries.ts';

const workspaceCount = 20;
const runsPerWorkspace = 10;
const agentCount = 5;
const concurrency = 4;
/** For all 200 runs to be final: three times what a 2-core machine needs. */
const allFinalTimeoutMs = 8 * 60_000;

function numberedConfig(runNumber: number): Record<string, string> {
  return {
    'main.tf': `resource "terraform_data" "n" {\n  input = "${runNumber}"\n}\n\noutput "n" {\n  value = terraform_data.n.output\n}\n`,
  };
}

/** Creates the workspace's runs one after the other, so their creation order is their index order. */
async function submitInOrder(cluster: Cluster, workspace: Workspace, firstNumber: number): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < runsPerWorkspace; i++) {
    const cv = await uploadConfiguration(cluster.server, workspace.id, numberedConfig(firstNumber + i));
    runs.push(await createRun(cluster.server, workspace.id, cv, { message: `load ${firstNumber + i}` }));
  }
  return runs;
}

async function workspaceRuns(cluster: Cluster, workspaceId: string): Promise<Run[]> {
  return (await apiCall<{ data: Run[] }>(cluster.server, 'GET', `/api/v2/workspaces/${workspaceId}/runs?page[size]=100`, undefined, 200)).data;
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, `${pattern.flags}g`))?.length ?? 0;
}

/** Claims per job id in the server's log, minus claims handed back because the polling agent had hung up. */
function claimsPerJob(cluster: Cluster): Map<string, number> {
  const claims = new Map<string, number>();
  for (const entry of logEntries(cluster.server.output())) {
    if (entry.msg === 'jobs claimed') for (const job of entry.jobs as string[]) claims.set(job, (claims.get(job) ?? 0) + 1);
    if (entry.msg?.startsWith('claim returned to the queue') && typeof entry.job === 'string') claims.set(entry.job, (claims.get(entry.job) ?? 0) - 1);
  }
  return claims;
}

function timestamp(run: Run, name: string): number {
  const value = run.attributes['status-timestamps'][name];
  assert.ok(value, `run ${run.id} has no ${name}: ${JSON.stringify(run.attributes['status-timestamps'])}`);
  return Date.parse(value);
}

for (const backend of databaseBackends()) {
  test(`load: ${workspaceCount * runsPerWorkspace} runs across ${workspaceCount} workspaces and ${agentCount} agents with concurrency ${concurrency}: every run applied once, each workspace's in creation order (${backend})`, { timeout: allFinalTimeoutMs + 5 * 60_000 }, async (t) => {
    const started = Date.now();
    const cluster = await setupCluster(t, backend, { agents: agentCount, concurrency });
    const workspaces = [cluster.workspace];
    while (workspaces.length < workspaceCount) workspaces.push(await cluster.createWorkspace());

    const created = await Promise.all(workspaces.map((workspace, w) => submitInOrder(cluster, workspace, w * runsPerWorkspace + 1)));
    const submittedAt = Date.now();

    // Every run final: one listing per workspace per round, not 200 run reads.
    let latest: Run[][] = [];
    await waitUntil(
      `all ${workspaceCount * runsPerWorkspace} runs to be final`,
      async () => {
        latest = await Promise.all(workspaces.map((workspace) => workspaceRuns(cluster, workspace.id)));
        return latest.every((runs) => runs.every((run) => isFinal(run.attributes.status))) ? true : undefined;
      },
      async () => {
        const waiting = latest.flat().filter((run) => !isFinal(run.attributes.status));
        return `${waiting.length} not final: ${waiting.slice(0, 10).map((run) => `${run.id} ${run.attributes.status}`).join(', ')}\n${await cluster.diagnostics(waiting[0]?.id)}`;
      },
      allFinalTimeoutMs,
    );
    const finishedAt = Date.now();
    t.diagnostic(`${backend}: set-up + submission ${Math.round((submittedAt - started) / 1000)} s, runs ${Math.round((finishedAt - submittedAt) / 1000)} s`);

    const byId = new Map(latest.flat().map((run) => [run.id, run]));
    assert.equal(byId.size, workspaceCount * runsPerWorkspace, 'every created run is listed');
    const notApplied = [...byId.values()].filter((run) => run.attributes.status !== 'applied');
    assert.deepEqual(notApplied.map((run) => `${run.id} ${run.attributes.status}`), [], notApplied[0] ? await cluster.diagnostics(notApplied[0].id) : '');

    // Each job claimed once: 200 plans and 200 applies.
    const claims = claimsPerJob(cluster);
    assert.equal(claims.size, 2 * workspaceCount * runsPerWorkspace, 'one plan job and one apply job per run');
    const twice = [...claims].filter(([, n]) => n !== 1);
    assert.deepEqual(twice, [], 'every job was claimed exactly once');
    assert.deepEqual(cluster.server.output().split('\n').filter((line) => line.includes('job lost its agent')), []);

    for (const [w, workspace] of workspaces.entries()) {
      const runs = created[w]!.map((run) => byId.get(run.id)!);
      // Each plan and each apply ran once: one start line, one result.
      for (const run of runs) {
        const planLog = await readLog(cluster.server, relatedId(run, 'plan'));
        const applyLog = await readLog(cluster.server, relatedId(run, 'apply'));
        assert.equal(count(planLog, /^Outpost agent \S+: plan job/m), 1, planLog);
        assert.equal(count(planLog, /^Plan: \d+ to add/m), 1, planLog);
        assert.equal(count(applyLog, /^Outpost agent \S+: apply job/m), 1, applyLog);
        assert.equal(count(applyLog, /^Apply complete!/m), 1, applyLog);
      }
      // In creation order: one state version per run, serial +1 each time, in the runs' order.
      const versions = (await listStateVersions(cluster.server, workspace.id)).sort((a, b) => a.attributes.serial - b.attributes.serial);
      const why = JSON.stringify(versions.map((v) => [v.attributes.serial, relatedIdOrUndefined(v, 'run')]));
      assert.deepEqual(versions.map((version) => relatedId(version, 'run')), runs.map((run) => run.id), `state versions of ${workspace.id} by serial: ${why}`);
      const first = versions[0]!.attributes.serial;
      assert.deepEqual(versions.map((version) => version.attributes.serial), runs.map((_, i) => first + i), why);
      for (let i = 1; i < runs.length; i++) {
        assert.ok(timestamp(runs[i]!, 'planning-at') >= timestamp(runs[i - 1]!, 'applied-at'), `run ${i} of ${workspace.id} planned before run ${i - 1} was applied`);
      }
      const last = await downloadState(cluster.server, versions.at(-1)!.id);
      assert.equal(last.outputs.n?.value, String(w * runsPerWorkspace + runsPerWorkspace), JSON.stringify(last.outputs));
    }
  });
}
