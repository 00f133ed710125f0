// Wall time of one plan+apply run: by hand (tofu init, plan -out, apply in a
// directory that keeps its local state between iterations), through Outpost
// with the local driver, and through Outpost with the docker driver,
// alternated so machine noise hits all three alike. Prints a table (and
// JSON with --json). Needs the runner image for the docker column
// (scripts/build-images.sh); without it the column is skipped and says why.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startAgent } from '../test/support/cluster.ts';
import { tofuBinary } from '../test/support/toolchain.ts';
import { createPool, createRun, createWorkspace, uploadConfiguration } from '../test/support/api-calls.ts';
import { setupCluster } from '../test/support/test-cluster.ts';
import { waitForRunStatus } from '../test/support/waits.ts';
import { shippedEntryPoint as entryPoint } from '../test/support/cluster-environment.ts';
import { runnerImage } from '../test/support/drivers-under-test.ts';
import { summarize, type Hooks, printTable } from './measure.ts';

const run = promisify(execFile);
const iterations = Number(process.env.BENCH_ITERATIONS ?? 10);

/**
 * BENCH_OVERHEAD_RESOURCES (default 1) resources whose input changes every
 * iteration; more of them make a configuration where the engine itself has
 * work to do, so the ratio shows the overhead on more than a toy.
 */
const resources = Number(process.env.BENCH_OVERHEAD_RESOURCES ?? 1);

function configuration(i: number): Record<string, string> {
  const blocks = Array.from({ length: resources }, (_, n) => `resource "terraform_data" "x${n}" {\n  input = "iteration ${i}"\n}\n`);
  return { 'main.tf': `${blocks.join('')}output "x" {\n  value = terraform_data.x0.output\n}\n` };
}

/**
 * One directory for every iteration, its local state kept, as a workspace
 * keeps its state: each iteration updates the resources the previous one
 * made (with a refresh), the same work a run through Outpost does. A fresh
 * directory each time would create them from nothing, which is less work.
 */
async function byHand(dir: string, i: number): Promise<number> {
  await writeFile(path.join(dir, 'main.tf'), configuration(i)['main.tf']!);
  const env = { ...process.env, TF_IN_AUTOMATION: '1', TF_INPUT: '0', TF_CLI_CONFIG_FILE: '/dev/null' };
  const started = performance.now();
  await run(tofuBinary(), ['init', '-input=false', '-no-color'], { cwd: dir, env });
  await run(tofuBinary(), ['plan', '-input=false', '-no-color', '-out=plan.tfplan'], { cwd: dir, env });
  await run(tofuBinary(), ['apply', '-input=false', '-no-color', 'plan.tfplan'], { cwd: dir, env });
  return performance.now() - started;
}

export async function driverOverhead(hooks: Hooks): Promise<Record<string, unknown>> {
  const cluster = await setupCluster(hooks, 'sqlite', { entryPoint });
  const { server } = cluster;
  const dockerImageMissing = await run('docker', ['image', 'inspect', runnerImage]).then(() => undefined, () => `runner image ${runnerImage} not built`);
  let dockerWorkspace: string | undefined;
  if (!dockerImageMissing) {
    const pool = await createPool(server);
    dockerWorkspace = (await createWorkspace(server, { poolId: pool.id })).id;
    await startAgent(server, { token: pool.token, t: hooks, entryPoint, env: { OUTPOST_AGENT_DRIVER: 'docker', OUTPOST_AGENT_CONTAINER_TASK_IMAGE: runnerImage } });
  }
  const throughOutpost = async (workspaceId: string, i: number): Promise<number> => {
    const cv = await uploadConfiguration(server, workspaceId, configuration(i));
    // Until the server records the run applied (its status timestamp, same
    // clock): the test client polls every 100 ms, which would add up to
    // 100 ms of waiting that is not Outpost's.
    const started = Date.now();
    const created = await createRun(server, workspaceId, cv);
    const applied = await waitForRunStatus(server, created.id, ['applied'], 120_000);
    return Date.parse(applied.attributes['status-timestamps']['applied-at']!) - started;
  };
  const handDir = await mkdtemp(path.join(os.tmpdir(), 'bench-hand-'));
  hooks.after(() => rm(handDir, { recursive: true, force: true }));
  const samples: Record<string, number[]> = { hand: [], local: [], docker: [] };
  // One warm-up of each, not measured: first runs pay one-time costs (engine
  // cache, image layers in the page cache) that a long-running agent does not.
  await byHand(handDir, -1);
  await throughOutpost(cluster.workspace.id, -1);
  if (dockerWorkspace) await throughOutpost(dockerWorkspace, -1);
  for (let i = 0; i < iterations; i++) {
    samples.hand!.push(await byHand(handDir, i));
    samples.local!.push(await throughOutpost(cluster.workspace.id, i));
    if (dockerWorkspace) samples.docker!.push(await throughOutpost(dockerWorkspace, i));
  }
  const hand = summarize(samples.hand!);
  const local = summarize(samples.local!);
  const docker = dockerWorkspace ? summarize(samples.docker!) : undefined;
  printTable(`plan + apply of ${resources} resource(s), ${iterations} alternated iterations (ms)`, [
    ['by hand (tofu init, plan, apply)', hand],
    ['Outpost, local driver', local],
    ...(docker ? [['Outpost, docker driver', docker] as const] : []),
  ]);
  const result = {
    iterations,
    resources,
    hand,
    local,
    docker: docker ?? { skipped: dockerImageMissing },
    localOverHand: local.median / hand.median,
    dockerExtraSecondsOverLocal: docker ? (docker.median - local.median) / 1000 : null,
  };
  process.stdout.write(`local ÷ by hand (median): ${result.localOverHand.toFixed(2)}\n`);
  if (docker) process.stdout.write(`docker − local (median): ${result.dockerExtraSecondsOverLocal!.toFixed(2)} s per run\n`);
  return result;
}
