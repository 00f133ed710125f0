// An agent process that dies mid-apply and is started again on the same
// data dir: the new process kills what the old one left running, reports the
// job lost at once (with the lease id it persisted), and the run errors with
// agent_lost long before the lease would have lapsed. The lease here is two
// minutes and the wait one minute, so only the prompt report can pass.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startAgent } from '../support/cluster.ts';
import { createRun, getWorkspace, uploadConfiguration } from '../support/api-calls.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { waitForRunStatus } from '../support/waits.ts';
import { killLeftoversAfter, processesMatching, quickConfig, sleepingApplyConfig, sleepingCommand, waitForNoProcesses } from '../support/job-control.ts';

test('a restarted agent removes the job its previous process left and reports it lost at once', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { serverEnv: { OUTPOST_LEASE_TIMEOUT: '120s' } });
  const { server, workspace } = cluster;
  const [agent] = cluster.agents;
  assert.ok(agent);
  const sleeping = sleepingCommand();
  killLeftoversAfter(t, () => sleeping.pattern);

  const cv = await uploadConfiguration(server, workspace.id, sleepingApplyConfig(sleeping));
  const run = await createRun(server, workspace.id, cv);
  await waitForRunStatus(server, run.id, ['applying'], 60_000);
  const deadline = Date.now() + 30_000;
  while ((await processesMatching(sleeping.pattern)).length === 0) {
    if (Date.now() > deadline) throw new Error(`the provisioner never started:\n${agent.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  await agent.kill();
  await agent.exited;
  assert.ok((await processesMatching(sleeping.pattern)).length > 0, 'the job outlives a killed agent (its own process group)');

  const restarted = await startAgent(server, { token: cluster.pool.token, t, env: { OUTPOST_AGENT_DATA_DIR: agent.dataDir } });
  const errored = await waitForRunStatus(server, run.id, ['errored'], 60_000, [restarted]);
  assert.equal(errored.attributes['error-code'], 'agent_lost');
  assert.match(String(errored.attributes['error-message']), /agent running it restarted/);
  await waitForNoProcesses(sleeping.pattern, () => restarted.output());
  assert.equal((await getWorkspace(server, workspace.id)).attributes.locked, false, 'the lock the lost apply held is released');

  const next = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig()));
  await waitForRunStatus(server, next.id, ['applied'], 60_000, [restarted]);
});
