// The run lifecycle end to end: the real `outpost server` and `outpost agent
// run`, and the real OpenTofu planning and applying configurations made of
// built-in resources only (terraform_data, outputs, variables, local-exec),
// so nothing is downloaded. One cluster per backend; each test has its own
// workspace, so the tests do not depend on each other.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { databaseBackends } from '../support/postgres.ts';
import { createRun, createVariable, currentStateVersion, downloadState, getPhase, getRun, getWorkspace, listStateVersions, readLog, relatedId, runAction, runLogs, stateOutputs, uploadConfiguration, type Run } from '../support/api-calls.ts';
import { assertNoJobLost, outputsFromApplyLog } from '../support/log-checks.ts';
import { setupCluster, suiteHooks, type Cluster } from '../support/test-cluster.ts';

// `id` is only known after the apply, so its value reaches the apply log's
// Outputs section and the state, but not the plan.
const simpleConfiguration = (input = 'hello'): Record<string, string> => ({
  'main.tf': `
resource "terraform_data" "this" {
  input = "${input}"
}

output "greeting" {
  value = terraform_data.this.output
}

output "resource_id" {
  value = terraform_data.this.id
}

output "secret" {
  value     = "not-for-the-api-${input}"
  sensitive = true
}
`,
});

function counts(run: Run): [number | null, number | null, number | null] {
  const a = run.attributes;
  return [a['resource-additions'], a['resource-changes'], a['resource-destructions']];
}

for (const backend of databaseBackends()) {
  describe(`run lifecycle (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    before(async () => {
      cluster = await setupCluster(hooks, backend);
    });

    test('plans and auto-applies a configuration; the same configuration again has no changes', async () => {
      const { server } = cluster;
      const logMark = server.output().length;
      const workspace = await cluster.createWorkspace();
      const cv = await uploadConfiguration(server, workspace.id, simpleConfiguration());
      const created = await createRun(server, workspace.id, cv);
      assert.equal(created.attributes['auto-apply'], true, 'the run takes the workspace\'s auto-apply');

      const run = await cluster.waitForRun(created.id, ['applied']);
      const why = await cluster.diagnostics(run.id);
      assert.equal(run.attributes['has-changes'], true, why);
      assert.deepEqual(counts(run), [1, 0, 0], why);
      for (const stamp of ['pending-at', 'plan-queued-at', 'planning-at', 'apply-queued-at', 'applying-at', 'applied-at']) {
        assert.ok(run.attributes['status-timestamps'][stamp], `status-timestamps lacks ${stamp}\n${why}`);
      }

      const plan = await getPhase(server, relatedId(run, 'plan'));
      assert.equal(plan.attributes.status, 'finished', why);
      assert.equal(plan.attributes['has-changes'], true, why);
      assert.deepEqual(
        [plan.attributes['resource-additions'], plan.attributes['resource-changes'], plan.attributes['resource-destructions']],
        [1, 0, 0],
        why,
      );
      assert.equal((await getPhase(server, relatedId(run, 'apply'))).attributes.status, 'finished', why);

      const logs = await runLogs(server, run);
      // The engine's own lines, not Outpost's summary ("Outpost: Plan: …").
      assert.match(logs.plan, /^Plan: 1 to add, 0 to change, 0 to destroy\.$/m, why);
      assert.match(logs.apply, /^Apply complete! Resources: 1 added, 0 changed, 0 destroyed\.$/m, why);

      // The same configuration version again: nothing to do, so no apply.
      const again = await createRun(server, workspace.id, cv);
      const unchanged = await cluster.waitForRun(again.id, ['planned_and_finished']);
      const whyAgain = await cluster.diagnostics(again.id);
      assert.equal(unchanged.attributes['has-changes'], false, whyAgain);
      assert.deepEqual(counts(unchanged), [0, 0, 0], whyAgain);
      assert.match(await readLog(server, relatedId(unchanged, 'plan')), /^No changes\./m, whyAgain);
      assert.equal((await getPhase(server, relatedId(unchanged, 'apply'))).attributes.status, 'unreachable', whyAgain);
      assertNoJobLost(server, logMark);
    });

    test('the applied state is stored: its outputs match the apply log and the outputs API; sensitive ones are hidden', async () => {
      const { server } = cluster;
      const workspace = await cluster.createWorkspace();
      const cv = await uploadConfiguration(server, workspace.id, simpleConfiguration('state-check'));
      const run = await cluster.waitForRun((await createRun(server, workspace.id, cv)).id, ['applied']);
      const why = await cluster.diagnostics(run.id);

      const version = await currentStateVersion(server, workspace.id);
      assert.ok(version, `no current state version after the apply\n${why}`);
      assert.equal(relatedId(version, 'run'), run.id, 'the state version records the run that wrote it');
      const state = await downloadState(server, version.id);
      assert.equal(state.serial, version.attributes.serial);
      assert.equal(state.lineage, version.attributes.lineage);
      assert.deepEqual(
        state.resources.map((r) => `${r.type}.${r.name}`),
        ['terraform_data.this'],
        `state resources: ${JSON.stringify(state.resources)}`,
      );

      // What the engine printed at the end of the apply is what was stored.
      const printed = outputsFromApplyLog(await readLog(server, relatedId(run, 'apply')));
      assert.deepEqual(Object.keys(printed).sort(), ['greeting', 'resource_id'], why);
      assert.equal(printed.greeting, 'state-check');
      assert.match(printed.resource_id ?? '', /^[0-9a-f-]{36}$/, 'terraform_data ids are UUIDs');
      const stored = Object.fromEntries(
        Object.entries(state.outputs)
          .filter(([, output]) => output.sensitive !== true)
          .map(([name, output]) => [name, output.value]),
      );
      assert.deepEqual(stored, printed, `state outputs ${JSON.stringify(state.outputs)} differ from the apply log\n${why}`);
      assert.equal(state.outputs.secret?.sensitive, true);
      assert.equal(state.outputs.secret?.value, 'not-for-the-api-state-check', 'the state itself keeps the sensitive value');

      const fromApi = await stateOutputs(server, version.id);
      const byName = Object.fromEntries(fromApi.map((output) => [output.attributes.name, output.attributes]));
      assert.deepEqual(Object.keys(byName).sort(), ['greeting', 'resource_id', 'secret'], JSON.stringify(fromApi));
      assert.deepEqual(byName.greeting, { name: 'greeting', sensitive: false, type: 'string', 'detailed-type': 'string', value: printed.greeting });
      assert.deepEqual(byName.resource_id, { name: 'resource_id', sensitive: false, type: 'string', 'detailed-type': 'string', value: printed.resource_id });
      assert.deepEqual(
        byName.secret,
        { name: 'secret', sensitive: true, type: 'string', 'detailed-type': 'string', value: null },
        'a sensitive output has no value in the list',
      );
    });

    test('without auto-apply the run waits at planned until it is confirmed, then applies', async () => {
      const { server } = cluster;
      const workspace = await cluster.createWorkspace({ autoApply: false });
      const cv = await uploadConfiguration(server, workspace.id, simpleConfiguration('confirmed'));
      const created = await createRun(server, workspace.id, cv);
      assert.equal(created.attributes['auto-apply'], false);

      const planned = await cluster.waitForRun(created.id, ['planned']);
      const why = await cluster.diagnostics(planned.id);
      assert.equal(planned.attributes['has-changes'], true, why);
      assert.deepEqual(counts(planned), [1, 0, 0], why);
      assert.equal((await getPhase(server, relatedId(planned, 'apply'))).attributes.status, 'pending', why);
      assert.equal(await currentStateVersion(server, workspace.id), undefined, 'nothing is applied before the confirmation');
      assert.equal(relatedId(await getWorkspace(server, workspace.id), 'current-run'), planned.id, 'the planned run holds the workspace');

      await runAction(server, planned.id, 'apply');
      const applied = await cluster.waitForRun(planned.id, ['applied']);
      assert.deepEqual(counts(applied), [1, 0, 0], await cluster.diagnostics(applied.id));
      assert.ok(applied.attributes['status-timestamps']['planned-at'], 'the run went through planned');
      assert.match(await readLog(server, relatedId(applied, 'apply')), /^Apply complete! Resources: 1 added/m);
      const version = await currentStateVersion(server, workspace.id);
      assert.ok(version, 'the confirmed apply wrote state');
      assert.equal(relatedId(version, 'run'), applied.id);
    });

    test('a discarded plan is never applied and leaves the state as it was', async () => {
      const { server } = cluster;
      const workspace = await cluster.createWorkspace({ autoApply: false });
      // Some state first (the run overrides the workspace's auto-apply).
      const first = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, simpleConfiguration('v1')), {
        autoApply: true,
      });
      await cluster.waitForRun(first.id, ['applied']);
      const versionsBefore = await listStateVersions(server, workspace.id);
      assert.equal(versionsBefore.length, 1, await cluster.diagnostics(first.id));

      const changed = await uploadConfiguration(server, workspace.id, simpleConfiguration('v2'));
      const planned = await cluster.waitForRun((await createRun(server, workspace.id, changed)).id, ['planned']);
      assert.equal(planned.attributes['has-changes'], true, await cluster.diagnostics(planned.id));

      await runAction(server, planned.id, 'discard');
      const discarded = await cluster.waitForRun(planned.id, ['discarded']);
      const why = await cluster.diagnostics(discarded.id);
      assert.ok(discarded.attributes['status-timestamps']['discarded-at'], why);
      assert.equal(discarded.attributes['status-timestamps']['applying-at'], undefined, why);
      assert.equal((await getPhase(server, relatedId(discarded, 'apply'))).attributes.status, 'unreachable', why);
      assert.equal(await readLog(server, relatedId(discarded, 'apply')), '', 'a discarded run has no apply log');

      assert.deepEqual(
        (await listStateVersions(server, workspace.id)).map((v) => v.id),
        versionsBefore.map((v) => v.id),
        'discarding writes no state version',
      );
      const state = await downloadState(server, versionsBefore[0]!.id);
      assert.equal(state.outputs.greeting?.value, 'v1');
      const after = await getWorkspace(server, workspace.id);
      assert.equal(after.relationships?.['current-run']?.data, null, 'the discarded run releases the workspace');
      assert.equal(after.attributes.locked, false);
    });

    test('a destroy run removes every resource from the state', async () => {
      const { server } = cluster;
      const workspace = await cluster.createWorkspace();
      const cv = await uploadConfiguration(server, workspace.id, simpleConfiguration('doomed'));
      const applied = await cluster.waitForRun((await createRun(server, workspace.id, cv)).id, ['applied']);
      const before = await currentStateVersion(server, workspace.id);
      assert.ok(before, await cluster.diagnostics(applied.id));
      assert.equal((await downloadState(server, before.id)).resources.length, 1);

      const created = await createRun(server, workspace.id, cv, { isDestroy: true });
      assert.equal(created.attributes['is-destroy'], true);
      const destroyed = await cluster.waitForRun(created.id, ['applied']);
      const why = await cluster.diagnostics(destroyed.id);
      assert.equal(destroyed.attributes['has-changes'], true, why);
      assert.deepEqual(counts(destroyed), [0, 0, 1], why);
      const logs = await runLogs(server, destroyed);
      assert.match(logs.plan, /^Plan: 0 to add, 0 to change, 1 to destroy\.$/m, why);
      assert.match(logs.apply, /^(Apply|Destroy) complete! Resources: (0 added, 0 changed, )?1 destroyed\.$/m, why);

      const after = await currentStateVersion(server, workspace.id);
      assert.ok(after && after.id !== before.id, `the destroy wrote a new state version\n${why}`);
      assert.equal(relatedId(after, 'run'), destroyed.id);
      const state = await downloadState(server, after.id);
      assert.deepEqual(state.resources, [], `resources left in the state: ${JSON.stringify(state.resources)}`);
      assert.deepEqual(state.outputs, {}, 'a destroy removes the outputs too');
    });

    test('a plan-only run does not wait for the run holding the workspace, and neither locks nor writes state', async () => {
      const { server } = cluster;
      const logMark = server.output().length;
      const workspace = await cluster.createWorkspace({ autoApply: false });
      const cv = await uploadConfiguration(server, workspace.id, simpleConfiguration('held'));
      const holder = await cluster.waitForRun((await createRun(server, workspace.id, cv)).id, ['planned']);
      const before = await getWorkspace(server, workspace.id);
      assert.equal(relatedId(before, 'current-run'), holder.id, 'the planned run holds the workspace');
      const versionsBefore = await listStateVersions(server, workspace.id);

      const created = await createRun(server, workspace.id, cv, { planOnly: true });
      assert.equal(created.attributes['plan-only'], true);
      assert.notEqual(created.attributes.status, 'pending', 'a plan-only run is queued at once, not behind the holder');
      const finished = await cluster.waitForRun(created.id, ['planned_and_finished']);
      const why = await cluster.diagnostics(finished.id);
      // It did plan the changes; it just never applies them. A lock attempt
      // would have failed the plan (the server refuses plan-only locks).
      assert.equal(finished.attributes['has-changes'], true, why);
      assert.deepEqual(counts(finished), [1, 0, 0], why);
      assert.match(await readLog(server, relatedId(finished, 'plan')), /^Plan: 1 to add/m, why);
      assert.equal(finished.attributes['status-timestamps']['applying-at'], undefined, why);

      const after = await getWorkspace(server, workspace.id);
      assert.equal(after.attributes.locked, before.attributes.locked, 'the state lock is as it was');
      assert.equal(relatedId(after, 'current-run'), holder.id, 'the holder still holds the workspace');
      assert.equal((await getRun(server, holder.id)).attributes.status, 'planned');
      const versionsAfter = await listStateVersions(server, workspace.id);
      assert.deepEqual(versionsAfter.map((v) => v.id), versionsBefore.map((v) => v.id), 'the plan-only run wrote no state');

      // The holder is unaffected: it still applies.
      await runAction(server, holder.id, 'apply');
      await cluster.waitForRun(holder.id, ['applied']);
      const written = await listStateVersions(server, workspace.id);
      assert.ok(written.length > 0 && written.every((v) => relatedId(v, 'run') === holder.id), JSON.stringify(written));
      assertNoJobLost(server, logMark);
    });

    test('terraform, HCL and env variables reach the engine; sensitive values are masked in the logs', async () => {
      const { server } = cluster;
      const logMark = server.output().length;
      const workspace = await cluster.createWorkspace();
      const password = 'hunter2-correct-horse';
      const envSecret = 'env-secret-battery-staple';
      await createVariable(server, workspace.id, { key: 'name', value: 'world', category: 'terraform' });
      await createVariable(server, workspace.id, { key: 'zones', value: '["a", "b", "c"]', category: 'terraform', hcl: true });
      await createVariable(server, workspace.id, { key: 'password', value: password, category: 'terraform', sensitive: true });
      await createVariable(server, workspace.id, { key: 'MY_ENV', value: 'hello-from-env', category: 'env' });
      await createVariable(server, workspace.id, { key: 'MY_SECRET', value: envSecret, category: 'env', sensitive: true });
      // nonsensitive() makes the engine print the password: only Outpost's masking hides it.
      const cv = await uploadConfiguration(server, workspace.id, {
        'variables.tf': `
variable "name" {
  type = string
}

variable "zones" {
  type = list(string)
}

variable "password" {
  type      = string
  sensitive = true
}
`,
        'main.tf': `
resource "terraform_data" "vars" {
  input = {
    greeting = "hello \${var.name}"
    zones    = var.zones
    password = nonsensitive(var.password)
  }

  provisioner "local-exec" {
    command = "echo \\"env=$MY_ENV secret=$MY_SECRET\\""
  }
}

output "greeting" {
  value = "hello \${var.name}"
}

output "zones" {
  value = join(",", var.zones)
}

output "zone_count" {
  value = length(var.zones)
}

output "password_echo" {
  value = nonsensitive(var.password)
}
`,
      });
      const run = await cluster.waitForRun((await createRun(server, workspace.id, cv)).id, ['applied']);
      const logs = await runLogs(server, run);
      const why = await cluster.diagnostics(run.id);

      for (const [phase, log] of Object.entries(logs)) {
        assert.ok(!log.includes(password), `the ${phase} log shows the sensitive terraform variable\n${log}`);
        assert.ok(!log.includes(envSecret), `the ${phase} log shows the sensitive env variable\n${log}`);
      }
      assert.match(logs.plan, /password\s+= "\*\*\*"/, `the plan shows the password masked\n${why}`);
      assert.match(logs.plan, /greeting\s+= "hello world"/, why);
      assert.match(logs.apply, /\(local-exec\): env=hello-from-env secret=\*\*\*$/m, `local-exec saw both env variables\n${why}`);
      assert.match(logs.apply, /^password_echo = "\*\*\*"$/m, why);

      const version = await currentStateVersion(server, workspace.id);
      assert.ok(version, why);
      const values = Object.fromEntries((await stateOutputs(server, version.id)).map((o) => [o.attributes.name, o.attributes.value]));
      assert.equal(values.greeting, 'hello world', 'the terraform variable');
      assert.equal(values.zones, 'a,b,c', 'the HCL list variable');
      assert.equal(values.zone_count, 3, 'the HCL list variable is a list, not a string');
      assert.equal(values.password_echo, password, 'the engine got the real sensitive value');
      assertNoJobLost(server, logMark);
    });
  });
}
