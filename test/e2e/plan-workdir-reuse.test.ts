// An apply claimed by the agent that ran the plan starts from the plan job's
// working directory (no configuration download, no second `init`), but only
// when the plan file there is the one the control plane holds. Real server,
// agent and OpenTofu; SQLite only: the feature lives in the agent and the
// job operation, not in the database.
import assert from 'node:assert/strict';
import { appendFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { createRun, runAction, runLogs, uploadConfiguration } from '../support/api-calls.ts';
import { outputsFromApplyLog } from '../support/log-checks.ts';
import { setupCluster, suiteHooks, type Cluster } from '../support/test-cluster.ts';

const configuration = (input: string): Record<string, string> => ({
  'main.tf': `
resource "terraform_data" "this" {
  input = "${input}"
}

output "greeting" {
  value = terraform_data.this.output
}
`,
});

const reused = /this agent ran the plan and kept its working directory, which holds the same plan: the configuration and tofu init are reused/;
const refused = /the working directory this agent kept from the plan holds a different plan: starting afresh/;

describe('an apply on the agent that ran the plan', () => {
  const t = suiteHooks();
  let cluster: Cluster;
  let keptDir: string;
  before(async () => {
    cluster = await setupCluster(t, 'sqlite');
    keptDir = path.join(cluster.agents[0]!.dataDir, 'plan-workdirs');
  });

  test('reuses the plan job\'s directory: no configuration download and no init', async () => {
    const workspace = await cluster.createWorkspace();
    const cv = await uploadConfiguration(cluster.server, workspace.id, configuration('first'));
    const run = await cluster.waitForRun((await createRun(cluster.server, workspace.id, cv)).id, ['applied']);
    const logs = await runLogs(cluster.server, run);
    assert.match(logs.apply, reused, logs.apply);
    assert.doesNotMatch(logs.apply, /Outpost: running tofu init|Outpost: fetching configuration version/);
    assert.deepEqual(outputsFromApplyLog(logs.apply), { greeting: 'first' });
    // Handed over, so nothing of the run is left behind.
    assert.ok(!(await readdir(keptDir)).includes(run.id));
  });

  test('starts afresh when the kept plan file differs from the control plane\'s', async () => {
    const workspace = await cluster.createWorkspace({ autoApply: false });
    const cv = await uploadConfiguration(cluster.server, workspace.id, configuration('second'));
    const run = await cluster.waitForRun((await createRun(cluster.server, workspace.id, cv)).id, ['planned']);
    // What code run during the plan could have done to the local copy after it was uploaded.
    await appendFile(path.join(keptDir, run.id, 'plan.tfplan'), 'tampered');
    await runAction(cluster.server, run.id, 'apply');
    const applied = await cluster.waitForRun(run.id, ['applied']);
    const logs = await runLogs(cluster.server, applied);
    assert.match(logs.apply, refused, logs.apply);
    assert.match(logs.apply, /Outpost: fetching configuration version[\s\S]*Outpost: running tofu init[\s\S]*Outpost: running tofu apply/);
    assert.deepEqual(outputsFromApplyLog(logs.apply), { greeting: 'second' });
  });

  test('keeps nothing for a plan-only run or a plan without changes', async () => {
    const workspace = await cluster.createWorkspace();
    const cv = await uploadConfiguration(cluster.server, workspace.id, configuration('third'));
    const speculative = await cluster.waitForRun((await createRun(cluster.server, workspace.id, cv, { planOnly: true })).id, ['planned_and_finished']);
    assert.ok(!(await readdir(keptDir)).includes(speculative.id));

    await cluster.waitForRun((await createRun(cluster.server, workspace.id, cv)).id, ['applied']);
    const unchanged = await cluster.waitForRun((await createRun(cluster.server, workspace.id, cv)).id, ['planned_and_finished']);
    assert.ok(!(await readdir(keptDir)).includes(unchanged.id));
  });
});

describe('in a pool of two idle agents', () => {
  const t = suiteHooks();
  let cluster: Cluster;
  before(async () => {
    cluster = await setupCluster(t, 'sqlite', { agents: 2 });
  });

  test('the agent that ran the plan gets the apply first, auto-applied or confirmed, and reuses its directory', async () => {
    const auto = await cluster.createWorkspace();
    const autoRun = await cluster.waitForRun(
      (await createRun(cluster.server, auto.id, await uploadConfiguration(cluster.server, auto.id, configuration('auto')))).id,
      ['applied'],
    );
    assert.match((await runLogs(cluster.server, autoRun)).apply, reused);

    const manual = await cluster.createWorkspace({ autoApply: false });
    const manualRun = await createRun(cluster.server, manual.id, await uploadConfiguration(cluster.server, manual.id, configuration('manual')));
    await cluster.waitForRun(manualRun.id, ['planned']);
    await runAction(cluster.server, manualRun.id, 'apply');
    const applied = await cluster.waitForRun(manualRun.id, ['applied']);
    assert.match((await runLogs(cluster.server, applied)).apply, reused);
  });
});
