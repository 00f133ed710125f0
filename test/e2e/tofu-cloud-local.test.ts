// A workspace in `local` execution mode, reached by the stock OpenTofu CLI
// through a `cloud` block: tofu runs the engine on the user's machine, and
// only the state and its lock live in Outpost (TFE's state versions and
// workspace lock). No run is created and no agent is involved. A tofu that
// dies mid-apply leaves the lock, which `tofu force-unlock` removes.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { currentStateVersion, downloadState, stateOutputs } from '../support/api-calls.ts';
import { writeFiles } from '../support/files.ts';
import { processesMatching, sleepingApplyConfig, sleepingCommand, killLeftoversAfter } from '../support/job-control.ts';
import { databaseBackends } from '../support/postgres.ts';
import { suiteHooks, type Cluster } from '../support/test-cluster.ts';
import { createTfeWorkspace, initializedWorkdir, readWorkspace, stateVersionCount, workspaceRunIds } from '../support/tfe-workspaces.ts';
import { cloudBlock, greetingConfig, organization, runIdsIn, setupTofuCluster, type TofuCli } from '../support/tofu-cloud.ts';
import { waitUntil } from '../support/waits.ts';

for (const backend of databaseBackends()) {
  describe(`tofu with a local-execution workspace (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    let tofu: TofuCli;
    before(async () => {
      ({ cluster, tofu } = await setupTofuCluster(hooks, backend));
    });

    test('plan and apply run in the CLI; the state, its outputs and the lock are Outpost\'s', async (t) => {
      const { server } = cluster;
      const workspace = await createTfeWorkspace(server, { executionMode: 'local' });
      assert.equal((await readWorkspace(server, workspace.id)).attributes['execution-mode'], 'local');
      const name = workspace.attributes.name as string;
      const dir = await initializedWorkdir(t, tofu, { 'backend.tf': cloudBlock(tofu.hostname, { name }), 'main.tf': greetingConfig('run locally') });

      const plan = await tofu.run(dir, ['plan', '-input=false']);
      assert.equal(plan.code, 0, plan.describe());
      assert.match(plan.stdout, /Plan: 1 to add, 0 to change, 0 to destroy\./, plan.describe());
      assert.deepEqual(runIdsIn(plan.stdout), [], `a local plan has no remote run\n${plan.describe()}`);

      const apply = await tofu.run(dir, ['apply', '-auto-approve', '-input=false']);
      const why = `${apply.describe()}\n${await cluster.diagnostics()}`;
      assert.equal(apply.code, 0, why);
      assert.match(apply.stdout, /Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./, why);
      assert.deepEqual(await workspaceRunIds(server, workspace.id), [], `the engine ran in the CLI: no run on the server\n${why}`);

      // The state tofu wrote is the workspace's current state version, with its outputs.
      const version = await currentStateVersion(server, workspace.id);
      assert.ok(version, `the apply stored a state version\n${why}`);
      const state = await downloadState(server, version.id);
      assert.deepEqual(state.resources.map((r) => `${r.type}.${r.name}`), ['terraform_data.greeting'], why);
      const outputs = Object.fromEntries((await stateOutputs(server, version.id)).map((o) => [o.attributes.name, o.attributes]));
      assert.equal(outputs.greeting?.value, 'run locally', JSON.stringify(outputs));
      assert.equal(outputs.secret?.sensitive, true, JSON.stringify(outputs));
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, false, 'tofu released the lock after the apply');

      const json = await tofu.run(dir, ['output', '-json']);
      assert.equal(json.code, 0, json.describe());
      const read = JSON.parse(json.stdout) as Record<string, { value: unknown }>;
      assert.equal(read.greeting?.value, 'run locally', json.describe());
      assert.equal(read.secret?.value, 's3cr3t-run locally', json.describe());
      const list = await tofu.run(dir, ['state', 'list']);
      assert.deepEqual(list.stdout.trim().split('\n'), ['terraform_data.greeting'], list.describe());

      // A second apply builds on the stored state: a new version, one change in place.
      await writeFiles(dir, { 'main.tf': greetingConfig('changed locally') });
      const second = await tofu.run(dir, ['apply', '-auto-approve', '-input=false']);
      assert.equal(second.code, 0, second.describe());
      assert.match(second.stdout, /Apply complete! Resources: 0 added, 1 changed, 0 destroyed\./, second.describe());
      const next = await currentStateVersion(server, workspace.id);
      assert.ok(next && next.id !== version.id, second.describe());
      assert.equal((await downloadState(server, next.id)).lineage, state.lineage, 'the same state, continued');
      assert.ok((await downloadState(server, next.id)).serial > state.serial);
      assert.equal(await stateVersionCount(server, workspace.id), 2);
    });

    test('a tofu that dies mid-apply leaves the workspace locked; force-unlock frees it for the next apply', async (t) => {
      const { server } = cluster;
      const workspace = await createTfeWorkspace(server, { executionMode: 'local' });
      const name = workspace.attributes.name as string;
      const command = sleepingCommand();
      killLeftoversAfter(t, () => command.pattern);
      const dir = await initializedWorkdir(t, tofu, { 'backend.tf': cloudBlock(tofu.hostname, { name }), ...sleepingApplyConfig(command) });

      const apply = tofu.start(dir, ['apply', '-auto-approve', '-input=false']);
      await waitUntil(
        'the local apply\'s provisioner to sleep',
        async () => ((await processesMatching(`sleep ${command.duration.replace('.', '[.]')}`)).length > 0 ? true : undefined),
        async () => `tofu so far:\n${apply.output()}\n${await cluster.diagnostics()}`,
        120_000,
      );
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, true, `tofu holds the workspace lock while it applies\n${apply.output()}`);
      apply.kill();
      const killed = await apply.finished;
      assert.equal(killed.signal, 'SIGKILL', killed.describe());
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, true, 'the lock outlives the tofu that took it');

      await writeFiles(dir, { 'main.tf': greetingConfig('after the crash') });
      const refused = await tofu.run(dir, ['apply', '-auto-approve', '-input=false', '-lock-timeout=0s']);
      assert.equal(refused.code, 1, refused.describe());
      assert.match(refused.stderr, /Error acquiring the state lock/, refused.describe());
      assert.equal(await stateVersionCount(server, workspace.id), 0, refused.describe());

      const unlock = await tofu.run(dir, ['force-unlock', '-force', `${organization}/${name}`]);
      assert.equal(unlock.code, 0, unlock.describe());
      assert.match(unlock.stdout, /OpenTofu state has been successfully unlocked!/, unlock.describe());
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, false);

      const retried = await tofu.run(dir, ['apply', '-auto-approve', '-input=false']);
      assert.equal(retried.code, 0, retried.describe());
      assert.match(retried.stdout, /Apply complete! Resources: 1 added/, retried.describe());
      assert.equal(await stateVersionCount(server, workspace.id), 1);
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, false);
    });
  });
}
