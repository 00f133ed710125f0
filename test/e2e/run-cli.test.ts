// `outpost run DIR --workspace W --auto-approve` end to end: the real CLI
// uploads a directory to the real server, an agent runs it with the real
// OpenTofu, and the CLI streams the logs, prints the outputs and exits with
// the run's outcome.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { databaseBackends } from '../support/postgres.ts';
import { apiCall, currentStateVersion, readLog, relatedId, stateOutputs, type Run } from '../support/api-calls.ts';
import { runCli, type CliResult } from '../support/cli-runner.ts';
import { tempDir, writeFiles } from '../support/files.ts';
import { assertNoJobLost } from '../support/log-checks.ts';
import { setupCluster, suiteHooks, type Cluster } from '../support/test-cluster.ts';

function shown(result: CliResult): string {
  return `exit code ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

for (const backend of databaseBackends()) {
  describe(`outpost run (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    before(async () => {
      // Without auto-apply, so only --auto-approve makes the run apply.
      cluster = await setupCluster(hooks, backend, { autoApply: false });
    });

    async function runsOf(workspaceId: string): Promise<Run[]> {
      return (await apiCall<{ data: Run[] }>(cluster.server, 'GET', `/api/v2/workspaces/${workspaceId}/runs`, undefined, 200)).data;
    }

    test('uploads a directory, applies it with --auto-approve, prints the outputs and exits 0', async (t) => {
      const { server } = cluster;
      const logMark = server.output().length;
      const workspace = await cluster.createWorkspace({ autoApply: false });
      const dir = await tempDir(t);
      await writeFiles(dir, {
        'main.tf': `
resource "terraform_data" "cli" {
  input = "hello from the cli"
}

output "greeting" {
  value = terraform_data.cli.output
}

output "token" {
  value     = "cli-sensitive-output"
  sensitive = true
}
`,
        // Local state files never leave the machine.
        'terraform.tfstate': '{"this": "must not be uploaded"}',
      });

      const result = await runCli(t, cluster.server, ['run', dir, '--workspace', workspace.attributes.name, '--auto-approve']);
      const [run] = await runsOf(workspace.id);
      const why = `${shown(result)}\n${run ? await cluster.diagnostics(run.id) : await cluster.diagnostics()}`;
      assert.equal(result.code, 0, why);
      assert.ok(run, why);
      assert.equal(run.attributes.status, 'applied', why);
      assert.equal(run.attributes['auto-apply'], true, '--auto-approve made the run auto-apply');

      // The streamed logs, the outcome line, then the outputs.
      assert.match(result.stdout, /^Plan: 1 to add, 0 to change, 0 to destroy\.$/m, why);
      assert.match(result.stdout, /^Apply complete! Resources: 1 added, 0 changed, 0 destroyed\.$/m, why);
      assert.ok(result.stdout.includes(`Run ${run.id} applied: 1 added, 0 changed, 0 destroyed.`), why);
      const outputs = result.stdout.slice(result.stdout.lastIndexOf('\nOutputs:\n'));
      assert.match(outputs, /^greeting = "hello from the cli"$/m, why);
      assert.match(outputs, /^token = <sensitive>$/m, why);
      assert.ok(!result.stdout.includes('cli-sensitive-output'), `the CLI printed a sensitive output\n${why}`);

      assert.match(await readLog(server, relatedId(run, 'plan')), /^Outpost: extracted 1 file and 0 links/m, 'terraform.tfstate stayed local');

      const version = await currentStateVersion(server, workspace.id);
      assert.ok(version, why);
      const values = Object.fromEntries((await stateOutputs(server, version.id)).map((o) => [o.attributes.name, o.attributes.value]));
      assert.equal(values.greeting, 'hello from the cli');
      assertNoJobLost(server, logMark);
    });

    test('exits 1 when the configuration fails to apply', async (t) => {
      const workspace = await cluster.createWorkspace({ autoApply: false });
      const dir = await tempDir(t);
      await writeFiles(dir, {
        'main.tf': `
resource "terraform_data" "broken" {
  provisioner "local-exec" {
    command = "echo 'about to fail'; exit 3"
  }
}
`,
      });

      const result = await runCli(t, cluster.server, ['run', dir, '--workspace', workspace.attributes.name, '--auto-approve']);
      const [run] = await runsOf(workspace.id);
      const why = `${shown(result)}\n${run ? await cluster.diagnostics(run.id) : await cluster.diagnostics()}`;
      assert.equal(result.code, 1, why);
      assert.ok(run, why);
      assert.equal(run.attributes.status, 'errored', why);
      assert.equal(run.attributes['error-code'], 'engine_failed', why);
      assert.match(result.stdout, /about to fail/, `the provisioner's output was streamed\n${why}`);
      assert.match(result.stdout, /exit status 3/, `the engine's error was streamed\n${why}`);
      assert.ok(result.stdout.includes(`Run ${run.id} errored`), why);
      assert.ok(!/^Outputs:$/m.test(result.stdout), `no outputs for a failed run\n${why}`);
    });
  });
}
