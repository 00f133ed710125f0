// How runs wait for each other and for agents, end to end (real server,
// agent and OpenTofu): one state-changing run at a time per workspace, runs
// of different workspaces in parallel on one agent with free slots, and a
// run queued while no agent is online. Applies wait at a gate (a file the
// test creates) rather than sleeping, and overlap and ordering are asserted
// by observation through the API and by the server's status timestamps,
// never by elapsed time.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { startAgent } from '../support/cluster.ts';
import { databaseBackends } from '../support/postgres.ts';
import { createPool, createRun, createWorkspace, getPhase, getRun, listAgents, readLog, relatedId, uploadConfiguration, type Run } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { assertNoJobLost } from '../support/log-checks.ts';
import { setupCluster, suiteHooks, type Cluster } from '../support/test-cluster.ts';
import { isFinal, processLogs, runDiagnostics, waitForRunStatus, waitUntil } from '../support/waits.ts';

/**
 * One resource whose creation waits in a local-exec provisioner until the
 * test creates `gate` (at most 60 s, then it fails), so a test decides how
 * long an apply lasts instead of guessing with a fixed sleep. A new label
 * replaces the resource, so the provisioner runs again.
 */
function gatedConfiguration(label: string, gate: string): Record<string, string> {
  const wait = `i=0; while [ ! -e '${gate}' ]; do i=$((i+1)); if [ $i -gt 600 ]; then echo 'the gate never opened'; exit 1; fi; sleep 0.1; done`;
  return {
    'main.tf': `
resource "terraform_data" "slow" {
  input            = "${label}"
  triggers_replace = "${label}"

  provisioner "local-exec" {
    command = "echo 'waiting at the gate: ${label}'; ${wait}; echo 'through the gate: ${label}'"
  }
}

output "label" {
  value = terraform_data.slow.output
}
`,
  };
}

function timestamp(run: Run, name: string): number {
  const value = run.attributes['status-timestamps'][name];
  assert.ok(value, `status-timestamps has no ${name}: ${JSON.stringify(run.attributes['status-timestamps'])}`);
  return Date.parse(value);
}

for (const backend of databaseBackends()) {
  describe(`workspace queue and agent slots (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    before(async () => {
      // Two slots: a run that waits does so because of its workspace, not for want of an agent.
      cluster = await setupCluster(hooks, backend, { concurrency: 2 });
    });

    test('two state-changing runs of one workspace run one after the other', async (t) => {
      const { server } = cluster;
      const logMark = server.output().length;
      const gate = path.join(await tempDir(t), 'open');
      const workspace = await cluster.createWorkspace();
      const firstCv = await uploadConfiguration(server, workspace.id, gatedConfiguration('first', gate));
      const secondCv = await uploadConfiguration(server, workspace.id, gatedConfiguration('second', gate));
      const first = await createRun(server, workspace.id, firstCv);
      const second = await createRun(server, workspace.id, secondCv);
      assert.equal(second.attributes.status, 'pending', 'the second run waits for the workspace');

      // Read the second run before the first: if the first is still not final
      // afterwards, it was not final when the second was read either.
      const expectSecondPending = async (): Promise<Run> => {
        const secondNow = await getRun(server, second.id);
        const firstNow = await getRun(server, first.id);
        if (!isFinal(firstNow.attributes.status)) {
          assert.equal(
            secondNow.attributes.status,
            'pending',
            `the second run left pending while the first is ${firstNow.attributes.status}\n` +
              (await runDiagnostics(server, second.id, cluster.agents)),
          );
        }
        return firstNow;
      };
      // The first run gets as far as its apply, where it waits at the gate,
      // and the agent has a free slot all along: still the second waits.
      await waitUntil(
        'the first run to wait at the gate in its apply',
        async () => {
          const firstNow = await expectSecondPending();
          if (firstNow.attributes.status !== 'applying') return undefined;
          return (await readLog(server, relatedId(firstNow, 'apply'))).includes('waiting at the gate: first') ? true : undefined;
        },
        () => runDiagnostics(server, first.id, cluster.agents),
      );
      const [agent] = await listAgents(server, cluster.pool.id);
      assert.equal(agent?.attributes['running-jobs'], 1, `one job runs, one slot is free: ${JSON.stringify(agent)}`);
      await expectSecondPending();

      await writeFile(gate, '');
      await waitUntil(
        'the first run to end',
        async () => (isFinal((await expectSecondPending()).attributes.status) ? true : undefined),
        () => runDiagnostics(server, first.id, cluster.agents),
      );
      const firstDone = await cluster.waitForRun(first.id, ['applied']);
      const secondDone = await cluster.waitForRun(second.id, ['applied']);
      const why = `${await runDiagnostics(server, first.id)}\n${await runDiagnostics(server, second.id, cluster.agents)}`;
      const firstEnded = timestamp(firstDone, 'applied-at');
      assert.ok(timestamp(secondDone, 'pending-at') < firstEnded, `the second run was created while the first was running\n${why}`);
      assert.ok(timestamp(secondDone, 'plan-queued-at') >= firstEnded, `the second run was queued before the first ended\n${why}`);
      assert.ok(timestamp(secondDone, 'planning-at') >= firstEnded, `the second run's plan started before the first ended\n${why}`);
      assert.match(await readLog(server, relatedId(firstDone, 'apply')), /through the gate: first/, why);
      assert.match(await readLog(server, relatedId(secondDone, 'apply')), /through the gate: second/, why);
      assertNoJobLost(server, logMark);
    });

    test('an agent with two slots runs two workspaces\' runs at the same time', async (t) => {
      const { server, pool } = cluster;
      const logMark = server.output().length;
      const [agent] = await listAgents(server, pool.id);
      assert.equal(agent?.attributes.concurrency, 2, JSON.stringify(agent));
      const gate = path.join(await tempDir(t), 'open');
      const workspaces = [await cluster.createWorkspace(), await cluster.createWorkspace()];
      const cvs: string[] = [];
      for (const [i, workspace] of workspaces.entries()) {
        cvs.push(await uploadConfiguration(server, workspace.id, gatedConfiguration(`parallel-${i}`, gate)));
      }
      const runs: Run[] = [];
      for (const [i, workspace] of workspaces.entries()) runs.push(await createRun(server, workspace.id, cvs[i]!));
      const why = async (): Promise<string> =>
        `${await runDiagnostics(server, runs[0]!.id)}\n${await runDiagnostics(server, runs[1]!.id, cluster.agents)}`;

      // Both applies wait at the gate until the test has seen them together:
      // the agent's running-jobs (one query, so one moment) and both runs applying.
      let mostRunningJobs = 0;
      await waitUntil(
        'both runs to apply at the same time',
        async () => {
          const [listed] = await listAgents(server, pool.id);
          const running = listed?.attributes['running-jobs'] ?? 0;
          mostRunningJobs = Math.max(mostRunningJobs, running);
          const statuses = await Promise.all(runs.map(async (run) => (await getRun(server, run.id)).attributes.status));
          return running === 2 && statuses.every((status) => status === 'applying') ? true : undefined;
        },
        why,
      );
      await writeFile(gate, '');

      const done = await Promise.all(runs.map((run) => cluster.waitForRun(run.id, ['applied'])));
      for (const run of done) {
        assert.deepEqual([run.attributes['resource-additions'], run.attributes['resource-destructions']], [1, 0], await why());
      }
      // The applies overlapped: each started before the other ended.
      const [a, b] = done as [Run, Run];
      assert.ok(timestamp(a, 'applying-at') < timestamp(b, 'applied-at') && timestamp(b, 'applying-at') < timestamp(a, 'applied-at'), await why());
      assert.equal(mostRunningJobs, 2, 'never more jobs than the agent\'s concurrency');
      assertNoJobLost(server, logMark);
    });

    test('a run queued while no agent is online waits in plan_queued and runs once an agent registers', async (t) => {
      const { server } = cluster;
      const logMark = server.output().length;
      // Open from the start: this run need not wait.
      const gate = path.join(await tempDir(t), 'open');
      await writeFile(gate, '');
      // A pool of its own: the cluster's agent serves another pool.
      const pool = await createPool(server);
      const workspace = await createWorkspace(server, { poolId: pool.id });
      const cv = await uploadConfiguration(server, workspace.id, gatedConfiguration('late', gate));
      const created = await createRun(server, workspace.id, cv);
      assert.equal(created.attributes.status, 'plan_queued', JSON.stringify(created.attributes));

      // Nobody can take it: it stays queued (observed a few times).
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        const run = await getRun(server, created.id);
        assert.equal(run.attributes.status, 'plan_queued', await runDiagnostics(server, created.id));
        assert.equal((await getPhase(server, relatedId(run, 'plan'))).attributes.status, 'queued');
      }
      assert.deepEqual(await listAgents(server, pool.id), []);

      const agent = await startAgent(server, { token: pool.token, t: hooks });
      await waitUntil(
        'the late agent to register',
        async () => ((await listAgents(server, pool.id)).length === 1 ? true : undefined),
        () => processLogs([server, agent]),
        30_000,
      );
      const applied = await waitForRunStatus(server, created.id, ['applied'], 60_000, [agent]);
      const why = await runDiagnostics(server, created.id, [agent]);
      assert.deepEqual([applied.attributes['resource-additions'], applied.attributes['resource-changes']], [1, 0], why);
      assert.match(await readLog(server, relatedId(applied, 'apply')), /through the gate: late/, why);
      assertNoJobLost(server, logMark);
    });
  });
}
