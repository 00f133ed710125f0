// The stock OpenTofu CLI with the older `backend "remote"` block against
// Outpost over HTTPS: it discovers `tfe.v2.1` instead of the cloud block's
// `tfe.v2` and takes its own code paths through the same API. init, a
// speculative plan, an apply on the pool, and the outputs it stored.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { currentStateVersion } from '../support/api-calls.ts';
import { databaseBackends } from '../support/postgres.ts';
import { suiteHooks, type Cluster } from '../support/test-cluster.ts';
import { claimedBy, createTfeWorkspace, initializedWorkdir, readRun, relatedTo, stateVersionCount } from '../support/tfe-workspaces.ts';
import { greetingConfig, lastRunId, remoteBackendBlock, setupTofuCluster, type TofuCli } from '../support/tofu-cloud.ts';

/** The run sources TFE gives runs the CLI starts through `backend "remote"`. */
const remoteRunSources = ['tfe-cli', 'terraform'];

for (const backend of databaseBackends()) {
  describe(`tofu with backend "remote" over HTTPS (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    let tofu: TofuCli;
    before(async () => {
      ({ cluster, tofu } = await setupTofuCluster(hooks, backend));
    });

    test('init, a speculative plan, apply -auto-approve on the pool, and output', async (t) => {
      const { server } = cluster;
      const workspace = await createTfeWorkspace(server, { poolId: cluster.pool.id });
      const name = workspace.attributes.name as string;
      const dir = await initializedWorkdir(t, tofu, { 'backend.tf': remoteBackendBlock(tofu.hostname, name), 'main.tf': greetingConfig('via remote') }, { backend: 'remote' });

      const plan = await tofu.run(dir, ['plan', '-input=false']);
      const planRunId = lastRunId(plan);
      const planWhy = `${plan.describe()}\n${await cluster.diagnostics(planRunId)}`;
      assert.equal(plan.code, 0, planWhy);
      assert.match(plan.stdout, /Plan: 1 to add, 0 to change, 0 to destroy\./, planWhy);
      const planRun = await readRun(server, planRunId);
      assert.equal(planRun.attributes.status, 'planned_and_finished', planWhy);
      assert.equal(planRun.attributes['plan-only'], true, planWhy);
      assert.ok(remoteRunSources.includes(planRun.attributes.source as string), `run source ${String(planRun.attributes.source)}, expected one of ${remoteRunSources.join(', ')}`);
      assert.equal(await stateVersionCount(server, workspace.id), 0);

      const apply = await tofu.run(dir, ['apply', '-auto-approve', '-input=false']);
      const runId = lastRunId(apply);
      const why = `${apply.describe()}\n${await cluster.diagnostics(runId)}`;
      assert.equal(apply.code, 0, why);
      assert.notEqual(runId, planRunId);
      assert.match(apply.stdout, /Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./, why);
      const run = await readRun(server, runId);
      assert.equal(run.attributes.status, 'applied', why);
      assert.equal(relatedTo(run, 'workspace'), workspace.id);
      assert.ok(cluster.agents.some((agent) => claimedBy(agent.output(), runId, 'apply')), `an agent of the pool applied ${runId}\n${why}`);
      assert.ok(await currentStateVersion(server, workspace.id), why);

      const output = await tofu.run(dir, ['output', '-json']);
      assert.equal(output.code, 0, output.describe());
      const outputs = JSON.parse(output.stdout) as Record<string, { value: unknown; sensitive: boolean }>;
      assert.equal(outputs.greeting?.value, 'via remote', output.describe());
      assert.deepEqual(outputs.details?.value, { count: 3, tags: ['a', 'b'] }, output.describe());
      assert.equal(outputs.secret?.sensitive, true, output.describe());
      const human = await tofu.run(dir, ['output']);
      assert.match(human.stdout, /^greeting = "via remote"$/m, human.describe());
      assert.match(human.stdout, /^secret = <sensitive>$/m, human.describe());
    });
  });
}
