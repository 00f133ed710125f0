// The stock OpenTofu CLI with a `cloud` block against Outpost as its TFE
// host, over HTTPS with a certificate from a test CA: service discovery and
// ping, `tofu init`, a speculative `tofu plan`, `tofu apply` with
// -auto-approve and with an answer typed on stdin, and the commands that
// read what a run stored (`output`, `state list`, `state pull`). Every run
// goes to the workspace's agent pool, where a real agent runs the real
// OpenTofu; tofu only uploads, follows and reads.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { currentStateVersion, downloadState, readLog } from '../support/api-calls.ts';
import type { TestHooks } from '../support/cluster.ts';
import { writeFiles } from '../support/files.ts';
import { databaseBackends } from '../support/postgres.ts';
import { suiteHooks, type Cluster } from '../support/test-cluster.ts';
import { claimedBy, createTfeWorkspace, initializedWorkdir, readRun, readWorkspace, relatedTo, stateVersionCount, watchWorkspace, type RawResource } from '../support/tfe-workspaces.ts';
import { cloudBlock, greetingConfig, lastRunId, runIdsIn, setupTofuCluster, type TofuCli, type TofuProcess, type TofuResult } from '../support/tofu-cloud.ts';

/** The run sources TFE gives runs the CLI starts through a `cloud` block. */
const cloudRunSources = ['tfe-cli', 'terraform+cloud'];

for (const backend of databaseBackends()) {
  describe(`tofu with a cloud block over HTTPS (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    let tofu: TofuCli;
    before(async () => {
      ({ cluster, tofu } = await setupTofuCluster(hooks, backend));
    });

    /** A working directory whose cloud block names a new workspace of the pool, initialized. */
    async function initialized(t: TestHooks, main: string, workspaceOptions: { autoApply?: boolean } = {}): Promise<{ dir: string; workspace: RawResource }> {
      const workspace = await createTfeWorkspace(cluster.server, { poolId: cluster.pool.id, ...workspaceOptions });
      const dir = await initializedWorkdir(t, tofu, { 'backend.tf': cloudBlock(tofu.hostname, { name: workspace.attributes.name as string }), 'main.tf': main });
      return { dir, workspace };
    }

    async function why(result: TofuResult, runId?: string): Promise<string> {
      return `${result.describe()}\n${await cluster.diagnostics(runId)}`;
    }

    test('service discovery advertises the TFE API and /api/v2/ping answers with its version', async () => {
      const { server } = cluster;
      const discovery = await server.api<Record<string, unknown>>('GET', '/.well-known/terraform.json', undefined, { token: null });
      assert.equal(discovery.status, 200, JSON.stringify(discovery.body));
      const base = `${server.url}/.well-known/terraform.json`;
      for (const service of ['tfe.v2', 'tfe.v2.1', 'tfe.v2.2']) {
        const advertised = discovery.body[service];
        assert.equal(typeof advertised, 'string', `${service} is advertised: ${JSON.stringify(discovery.body)}`);
        assert.equal(new URL(advertised as string, base).href, `${server.url}/api/v2/`, `${service} points at the API`);
      }
      if ('login.v1' in discovery.body) {
        // Optional; when advertised, `tofu login` needs all of it.
        const login = discovery.body['login.v1'] as Record<string, unknown>;
        for (const key of ['client', 'grant_types', 'authz', 'token', 'ports']) assert.ok(key in login, `login.v1 has ${key}: ${JSON.stringify(login)}`);
      }

      const ping = await server.api('GET', '/api/v2/ping');
      assert.ok(ping.status >= 200 && ping.status < 300, `GET /api/v2/ping: HTTP ${ping.status} ${JSON.stringify(ping.body)}`);
      const version = ping.headers.get('tfp-api-version');
      assert.ok(version, 'ping answers with TFP-API-Version');
      const [major, minor] = version.split('.').map(Number);
      // The cloud block refuses servers below 2.5.
      assert.ok(major === 2 && (minor ?? 0) >= 5, `TFP-API-Version ${version} is at least 2.5`);
    });

    test('tofu plan is a speculative run on the pool: logs stream to tofu, it never holds the workspace', async (t) => {
      const { server } = cluster;
      const { dir, workspace } = await initialized(t, greetingConfig('planned only'));
      const watch = watchWorkspace(server, workspace.id);
      const plan = await tofu.run(dir, ['plan', '-input=false']);
      const seen = await watch.stop();
      const runId = lastRunId(plan);
      const diagnostics = await why(plan, runId);
      assert.equal(plan.code, 0, diagnostics);
      // The engine's plan, as the agent ran it, streamed through tofu.
      assert.match(plan.stdout, /terraform_data\.greeting will be created/, diagnostics);
      assert.match(plan.stdout, /Plan: 1 to add, 0 to change, 0 to destroy\./, diagnostics);
      const run = await readRun(server, runId);
      const planId = relatedTo(run, 'plan');
      assert.ok(planId, JSON.stringify(run));
      assert.match(await readLog(server, planId), /Plan: 1 to add/, `the plan log on the server\n${diagnostics}`);
      assert.equal(run.attributes.status, 'planned_and_finished', diagnostics);
      assert.equal(run.attributes['plan-only'], true, `a speculative plan is plan-only\n${diagnostics}`);
      assert.ok(cloudRunSources.includes(run.attributes.source as string), `run source ${String(run.attributes.source)}, expected one of ${cloudRunSources.join(', ')}`);
      assert.equal(relatedTo(run, 'workspace'), workspace.id);
      assert.ok(!seen.currentRuns.has(runId), `the workspace's current run was the speculative plan at some point: ${[...seen.currentRuns].join(', ')}`);
      assert.equal(relatedTo(await readWorkspace(server, workspace.id), 'current-run'), undefined, 'nothing holds the workspace after the plan');
      assert.equal(await stateVersionCount(server, workspace.id), 0, 'a plan stores no state');
      assert.ok(
        cluster.agents.some((agent) => claimedBy(agent.output(), runId, 'plan')),
        `an agent of the workspace's pool planned ${runId}\n${diagnostics}`,
      );
    });

    test('tofu apply -auto-approve applies on the pool; output, state list and state pull read what it stored', async (t) => {
      const { server } = cluster;
      const { dir, workspace } = await initialized(t, greetingConfig('hello from tofu'));
      const apply = await tofu.run(dir, ['apply', '-auto-approve', '-input=false']);
      const runId = lastRunId(apply);
      const diagnostics = await why(apply, runId);
      assert.equal(apply.code, 0, diagnostics);
      assert.match(apply.stdout, /Plan: 1 to add, 0 to change, 0 to destroy\./, diagnostics);
      assert.match(apply.stdout, /Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./, diagnostics);

      const run = await readRun(server, runId);
      assert.equal(run.attributes.status, 'applied', diagnostics);
      assert.equal(run.attributes['plan-only'], false, diagnostics);
      assert.ok(cloudRunSources.includes(run.attributes.source as string), `run source ${String(run.attributes.source)}`);
      assert.ok(cluster.agents.some((agent) => claimedBy(agent.output(), runId, 'apply')), `an agent of the pool applied ${runId}\n${diagnostics}`);

      const version = await currentStateVersion(server, workspace.id);
      assert.ok(version, `the apply stored a state version\n${diagnostics}`);
      const stored = await downloadState(server, version.id);

      const output = await tofu.run(dir, ['output']);
      assert.equal(output.code, 0, output.describe());
      assert.match(output.stdout, /^greeting = "hello from tofu"$/m, output.describe());
      assert.match(output.stdout, /^secret = <sensitive>$/m, output.describe());
      assert.ok(!output.stdout.includes('s3cr3t-'), `tofu output shows no sensitive value\n${output.describe()}`);

      const json = await tofu.run(dir, ['output', '-json']);
      assert.equal(json.code, 0, json.describe());
      const outputs = JSON.parse(json.stdout) as Record<string, { value: unknown; sensitive: boolean; type: unknown }>;
      assert.deepEqual(outputs.greeting, { sensitive: false, type: 'string', value: 'hello from tofu' }, json.describe());
      assert.deepEqual(outputs.details?.value, { count: 3, tags: ['a', 'b'] }, json.describe());
      // -json shows sensitive values: tofu reads them one by one through the API.
      assert.deepEqual(outputs.secret, { sensitive: true, type: 'string', value: 's3cr3t-hello from tofu' }, json.describe());

      const raw = await tofu.run(dir, ['output', '-raw', 'greeting']);
      assert.equal(raw.code, 0, raw.describe());
      assert.equal(raw.stdout, 'hello from tofu', raw.describe());

      const list = await tofu.run(dir, ['state', 'list']);
      assert.equal(list.code, 0, list.describe());
      assert.deepEqual(list.stdout.trim().split('\n'), ['terraform_data.greeting'], list.describe());

      const pull = await tofu.run(dir, ['state', 'pull']);
      assert.equal(pull.code, 0, pull.describe());
      const pulled = JSON.parse(pull.stdout) as { serial: number; lineage: string; resources: { type: string; name: string }[] };
      assert.equal(pulled.lineage, stored.lineage, 'tofu pulled the state the API has');
      assert.equal(pulled.serial, stored.serial, 'tofu pulled the current state version');
      assert.deepEqual(pulled.resources.map((r) => `${r.type}.${r.name}`), ['terraform_data.greeting']);
    });

    test('tofu apply asks for confirmation on stdin: "no" discards the run, then "yes" applies the next', async (t) => {
      const { server } = cluster;
      const { dir, workspace } = await initialized(t, greetingConfig('declined'), { autoApply: false });
      const name = workspace.attributes.name as string;

      /** Starts `tofu apply`, waits for its question, checks the run waits for it; returns tofu and the run. */
      const applyUntilAsked = async (): Promise<{ tofuApply: TofuProcess; runId: string }> => {
        const tofuApply = tofu.start(dir, ['apply']);
        const prompt = await tofuApply.waitForOutput('Enter a value:');
        assert.match(prompt, new RegExp(`Do you want to perform these actions in workspace "${name}"\\?`), prompt);
        assert.match(prompt, /Plan: 1 to add/, prompt);
        const runId = runIdsIn(prompt).at(-1);
        assert.ok(runId, `tofu printed the run's URL before asking\n${prompt}`);
        // While tofu asks, the run waits for a decision, as TFE shows it to every client.
        const waiting = await readRun(server, runId);
        assert.equal(waiting.attributes.status, 'planned', `the run waits for confirmation\n${prompt}`);
        assert.equal((waiting.attributes.actions as Record<string, unknown> | undefined)?.['is-confirmable'], true, JSON.stringify(waiting.attributes));
        return { tofuApply, runId };
      };

      const declined = await applyUntilAsked();
      declined.tofuApply.write('no\n');
      const discarded = await declined.tofuApply.finished;
      const discardWhy = await why(discarded, declined.runId);
      assert.equal(discarded.code, 1, discardWhy);
      assert.match(discarded.stdout + discarded.stderr, /Apply discarded\./, discardWhy);
      assert.equal((await readRun(server, declined.runId)).attributes.status, 'discarded', discardWhy);
      assert.equal(await stateVersionCount(server, workspace.id), 0, 'a discarded run stores no state');

      // The discarded run holds nothing: the next one plans, asks and applies.
      await writeFiles(dir, { 'main.tf': greetingConfig('confirmed') });
      const confirmed = await applyUntilAsked();
      assert.notEqual(confirmed.runId, declined.runId);
      confirmed.tofuApply.write('yes\n');
      const applied = await confirmed.tofuApply.finished;
      const applyWhy = await why(applied, confirmed.runId);
      assert.equal(applied.code, 0, applyWhy);
      assert.match(applied.stdout, /Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./, applyWhy);
      const run = await readRun(server, confirmed.runId);
      assert.equal(run.attributes.status, 'applied', applyWhy);
      assert.equal(run.attributes['auto-apply'], false, 'applied by the answer, not by auto-apply');
      assert.equal(await stateVersionCount(server, workspace.id), 1, applyWhy);
    });
  });
}
