// The stock OpenTofu CLI with a `cloud` block controlling remote runs and
// workspaces on Outpost: Ctrl-C during the remote plan of an apply (tofu
// asks, then cancels the run, and the agent stops the engine) and during a
// speculative plan (tofu only stops following it), `tofu force-unlock` of a
// workspace another user locked, and workspaces selected by tags.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test, type TestContext } from 'node:test';
import { getRun, relatedId } from '../support/api-calls.ts';
import { databaseBackends } from '../support/postgres.ts';
import {
  HeldEndpoint,
  jobDirectoryPattern,
  killLeftoversAfter,
  planTimeReadConfig,
  tofuInterruptMessage,
  waitForLog,
  waitForNoProcesses,
} from '../support/job-control.ts';
import { suiteHooks, type Cluster } from '../support/test-cluster.ts';
import {
  createTfeWorkspace,
  initializedWorkdir,
  lockWorkspace,
  readRun,
  readWorkspace,
  relatedTo,
  stateVersionCount,
  workspaceRunIds,
} from '../support/tfe-workspaces.ts';
import { cloudBlock, greetingConfig, lastRunId, organization, runIdsIn, setupTofuCluster, type TofuCli, type TofuProcess } from '../support/tofu-cloud.ts';
import { waitUntil } from '../support/waits.ts';

for (const backend of databaseBackends()) {
  describe(`tofu controls remote runs and workspaces (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    let tofu: TofuCli;
    before(async () => {
      ({ cluster, tofu } = await setupTofuCluster(hooks, backend));
    });

    /**
     * Starts `tofu <args>` in a new workspace whose plan reads a state from an
     * endpoint that never answers, and returns once tofu shows the engine's
     * log line for that read: the remote plan is running and cannot end.
     */
    async function heldRemotePlan(
      t: TestContext,
      args: readonly string[],
    ): Promise<{ tofuProcess: TofuProcess; runId: string; streamed: string; workspaceId: string; held: HeldEndpoint }> {
      const [agent] = cluster.agents;
      assert.ok(agent);
      killLeftoversAfter(t, () => jobDirectoryPattern(agent));
      const held = await HeldEndpoint.start(t);
      const workspace = await createTfeWorkspace(cluster.server, { poolId: cluster.pool.id });
      const dir = await initializedWorkdir(t, tofu, {
        'backend.tf': cloudBlock(tofu.hostname, { name: workspace.attributes.name as string }),
        ...planTimeReadConfig(held.url('/held-state')),
      });
      const tofuProcess = tofu.start(dir, args);
      await waitUntil(
        'the remote engine to ask the held endpoint for its state',
        async () => (held.requests.length > 0 ? true : undefined),
        async () => `tofu so far:\n${tofuProcess.output()}\n${await cluster.diagnostics()}`,
        120_000,
      );
      // The read has begun and cannot have ended: tofu shows the log live, not after the plan.
      const streamed = await tofuProcess.waitForOutput(/data\.terraform_remote_state\.held: Reading\.\.\./);
      const runId = runIdsIn(streamed).at(-1);
      assert.ok(runId, `tofu printed the run's URL\n${streamed}`);
      assert.equal((await readRun(cluster.server, runId)).attributes.status, 'planning', streamed);
      return { tofuProcess, runId, streamed, workspaceId: workspace.id, held };
    }

    /**
     * The cancel reached the engine (it logged the interrupt); once the held
     * read is answered (a read does not end on an interrupt: that is what
     * force-cancel is for), the run ends canceled, its plan too, and the
     * agent has stopped the engine.
     */
    async function assertCanceled(runId: string, workspaceId: string, held: HeldEndpoint): Promise<void> {
      const [agent] = cluster.agents;
      assert.ok(agent);
      const planId = relatedId(await getRun(cluster.server, runId), 'plan');
      await waitForLog(cluster.server, planId, tofuInterruptMessage, () => cluster.diagnostics(runId));
      held.release();
      await cluster.waitForRun(runId, ['canceled']);
      const phase = await cluster.server.api<{ data: { attributes: { status: string } } }>('GET', `/api/v2/plans/${planId}`);
      assert.equal(phase.body.data.attributes.status, 'canceled', JSON.stringify(phase.body));
      await waitForNoProcesses(jobDirectoryPattern(agent), () => cluster.diagnostics(runId));
      assert.notEqual(relatedTo(await readWorkspace(cluster.server, workspaceId), 'current-run'), runId, 'the canceled run does not hold the workspace');
      assert.equal(await stateVersionCount(cluster.server, workspaceId), 0);
    }

    test('Ctrl-C during the remote plan of tofu apply asks whether to cancel; "yes" cancels the run and the agent stops the engine', async (t) => {
      const { tofuProcess, runId, streamed, workspaceId, held } = await heldRemotePlan(t, ['apply']);
      tofuProcess.interrupt();
      const asked = await tofuProcess.waitForOutput(/Do you want to cancel the remote operation\?[\s\S]*Enter a value:/, { from: streamed.length });
      // Until answered, the run goes on.
      assert.equal((await readRun(cluster.server, runId)).attributes.status, 'planning', asked);
      tofuProcess.write('yes\n');
      const result = await tofuProcess.finished;
      const why = `${result.describe()}\n${await cluster.diagnostics(runId)}`;
      // Not the exit code: tofu judges the run by what it read before canceling it, and exits 0.
      assert.match(result.stdout, /The remote operation was successfully cancelled\./, why);
      assert.doesNotMatch(result.stdout, /Apply complete!/, why);
      await assertCanceled(runId, workspaceId, held);
    });

    test('Ctrl-C during tofu plan stops following the speculative run, as with TFE; the API cancels it', async (t) => {
      // tofu's own words: Ctrl-C "will stop streaming the logs, but will not
      // stop the plan running remotely" (OpenTofu's cloud backend never
      // cancels a plan-only run), so the run is canceled through the API.
      const { tofuProcess, runId, workspaceId, held } = await heldRemotePlan(t, ['plan']);
      tofuProcess.interrupt();
      const result = await tofuProcess.finished;
      assert.equal(result.code, 1, result.describe());
      assert.match(result.stdout, /Interrupt received\./, result.describe());
      assert.equal((await readRun(cluster.server, runId)).attributes.status, 'planning', `tofu left the run alone\n${result.describe()}`);
      const cancel = await cluster.server.api('POST', `/api/v2/runs/${runId}/actions/cancel`, { comment: 'the user gave up' });
      assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
      await assertCanceled(runId, workspaceId, held);
    });

    test('tofu force-unlock removes a lock another user took, and only with the lock id tofu names', async (t) => {
      const { server } = cluster;
      const workspace = await createTfeWorkspace(server, { poolId: cluster.pool.id });
      const name = workspace.attributes.name as string;
      const dir = await initializedWorkdir(t, tofu, { 'backend.tf': cloudBlock(tofu.hostname, { name }), 'main.tf': greetingConfig('locked') });
      await lockWorkspace(server, workspace.id, 'maintenance by another user');
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, true);

      const wrong = await tofu.run(dir, ['force-unlock', '-force', 'not-the-lock-id']);
      assert.equal(wrong.code, 1, wrong.describe());
      assert.match(wrong.stderr, new RegExp(`does not match existing lock ID "${organization}/${name}"`), wrong.describe());
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, true, 'a wrong lock id leaves the lock');

      const unlock = await tofu.run(dir, ['force-unlock', '-force', `${organization}/${name}`]);
      assert.equal(unlock.code, 0, unlock.describe());
      assert.match(unlock.stdout, /OpenTofu state has been successfully unlocked!/, unlock.describe());
      assert.equal((await readWorkspace(server, workspace.id)).attributes.locked, false, unlock.describe());

      // Unlocked for real: a run applies.
      const apply = await tofu.run(dir, ['apply', '-auto-approve', '-input=false']);
      assert.equal(apply.code, 0, `${apply.describe()}\n${await cluster.diagnostics()}`);
      assert.equal((await readRun(server, lastRunId(apply))).attributes.status, 'applied');
    });

    test('a cloud block selects workspaces by tags: init, workspace list and select, and the run lands in the selected one', async (t) => {
      const { server } = cluster;
      const tag = `e2e-${randomBytes(3).toString('hex')}`;
      const first = await createTfeWorkspace(server, { poolId: cluster.pool.id, tags: [tag, 'other'] });
      const second = await createTfeWorkspace(server, { poolId: cluster.pool.id, tags: [tag] });
      const untagged = await createTfeWorkspace(server, { poolId: cluster.pool.id, tags: ['unrelated'] });
      const nameOf = (workspace: typeof first): string => workspace.attributes.name as string;
      const tags = (await readWorkspace(server, first.id)).attributes['tag-names'];
      assert.deepEqual(Array.isArray(tags) ? [...(tags as string[])].sort() : tags, [tag, 'other'].sort(), 'the workspace has the tags it was created with');

      const dir = await initializedWorkdir(
        t,
        tofu,
        { 'backend.tf': cloudBlock(tofu.hostname, { tags: [tag] }), 'main.tf': greetingConfig('tagged') },
        { env: { TF_WORKSPACE: nameOf(first) } },
      );
      const list = await tofu.run(dir, ['workspace', 'list'], { env: { TF_WORKSPACE: nameOf(first) } });
      assert.equal(list.code, 0, list.describe());
      // `* name` for the current workspace, `  name` for the others; notices are prose.
      const listed = [...list.stdout.matchAll(/^[* ] (\S+)$/gm)].map((match) => match[1] as string);
      assert.deepEqual(listed.sort(), [nameOf(first), nameOf(second)].sort(), `only the tagged workspaces are listed\n${list.describe()}`);
      assert.ok(!listed.includes(nameOf(untagged)));

      const select = await tofu.run(dir, ['workspace', 'select', nameOf(second)]);
      assert.equal(select.code, 0, select.describe());
      const show = await tofu.run(dir, ['workspace', 'show']);
      assert.equal(show.stdout.trim(), nameOf(second), show.describe());

      const apply = await tofu.run(dir, ['apply', '-auto-approve', '-input=false']);
      const why = `${apply.describe()}\n${await cluster.diagnostics()}`;
      assert.equal(apply.code, 0, why);
      const run = await readRun(server, lastRunId(apply));
      assert.equal(run.attributes.status, 'applied', why);
      assert.equal(relatedTo(run, 'workspace'), second.id, 'the run is in the selected workspace');
      assert.equal(await stateVersionCount(server, second.id), 1);
      assert.deepEqual(await workspaceRunIds(server, first.id), [], 'the other tagged workspace has no run');
    });
  });
}
