// Throughput: BENCH_THROUGHPUT_RUNS (default 100) plan + apply runs of a
// one-resource configuration, wall time from the first to the last:
// - by hand: `tofu init`, `plan -out`, `apply`, 4 runs at a time (4
//   workers take the next run as soon as one ends), each worker in its own
//   directory whose local state it keeps, as a workspace keeps its state:
//   every run updates the resource the previous one left;
// - Outpost: the runs spread round-robin over 4 auto-apply workspaces, one
//   agent at concurrency 4 (the local driver). A workspace runs one run at a
//   time, the others wait `pending`, so at most 4 jobs run at once, as by
//   hand. The configuration versions are uploaded before the clock starts
//   (the files of the by-hand runs are written inside theirs, but that is a
//   file write, not an upload). The wall time is the server's: from the
//   first run's pending-at to the last applied-at, so the benchmark's
//   polling for the end adds nothing; the client's view is printed too.
// Note that each Outpost run is two jobs (plan, then apply) that each start
// an operation process and run `init`, where by hand one `init` serves both.
// BENCH_THROUGHPUT_ROUNDS (default 1) repeats both, alternating which goes first.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { apiCall, createRun, uploadConfiguration, type Run } from '../test/support/api-calls.ts';
import { setupCluster, type Cluster } from '../test/support/test-cluster.ts';
import { isFinal, waitForRunStatus } from '../test/support/waits.ts';
import { shippedEntryPoint as entryPoint } from '../test/support/cluster-environment.ts';
import { tofuBinary } from '../test/support/toolchain.ts';
import type { DatabaseBackend } from '../test/support/postgres.ts';
import type { Hooks } from './measure.ts';

const run = promisify(execFile);
const runs = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 100);
const rounds = Number(process.env.BENCH_THROUGHPUT_ROUNDS ?? 1);
const parallel = 4;
const backend = (process.env.BENCH_BACKEND ?? 'sqlite') as DatabaseBackend;

function mainTf(label: string): string {
  return `resource "terraform_data" "x" {\n  input = "${label}"\n}\noutput "x" {\n  value = terraform_data.x.output\n}\n`;
}

async function byHand(dir: string, label: string): Promise<void> {
  await writeFile(path.join(dir, 'main.tf'), mainTf(label));
  const env = { ...process.env, TF_IN_AUTOMATION: '1', TF_INPUT: '0', TF_CLI_CONFIG_FILE: '/dev/null' };
  await run(tofuBinary(), ['init', '-input=false', '-no-color'], { cwd: dir, env });
  await run(tofuBinary(), ['plan', '-input=false', '-no-color', '-out=plan.tfplan'], { cwd: dir, env });
  await run(tofuBinary(), ['apply', '-input=false', '-no-color', 'plan.tfplan'], { cwd: dir, env });
}

/** Wall ms of all runs by hand, `parallel` at a time, worker w in dirs[w]. */
async function allByHand(dirs: readonly string[], round: number): Promise<number> {
  let next = 0;
  const worker = async (dir: string): Promise<void> => {
    for (let i = next++; i < runs; i = next++) await byHand(dir, `round ${round} run ${i}`);
  };
  const started = performance.now();
  await Promise.all(dirs.map(worker));
  return performance.now() - started;
}

interface OutpostRound {
  /** Server clock: first pending-at → last applied-at. */
  serverMs: number;
  /** Client clock: first POST → the poll that saw every run final. */
  clientMs: number;
  notApplied: number;
}

async function runsOf(cluster: Cluster, workspaceId: string): Promise<Run[]> {
  const url = `/api/v2/workspaces/${workspaceId}/runs?page%5Bsize%5D=100`;
  return (await apiCall<{ data: Run[] }>(cluster.server, 'GET', url, undefined, 200)).data;
}

async function allThroughOutpost(cluster: Cluster, workspaceIds: readonly string[], round: number): Promise<OutpostRound> {
  const cvs: { workspaceId: string; cv: string }[] = [];
  for (let i = 0; i < runs; i++) {
    const workspaceId = workspaceIds[i % workspaceIds.length]!;
    cvs.push({ workspaceId, cv: await uploadConfiguration(cluster.server, workspaceId, { 'main.tf': mainTf(`round ${round} run ${i}`) }) });
  }
  const started = performance.now();
  const ids = new Set<string>();
  for (const { workspaceId, cv } of cvs) ids.add((await createRun(cluster.server, workspaceId, cv)).id);
  const finished = new Map<string, Run>();
  const deadline = Date.now() + runs * 60_000;
  while (finished.size < ids.size) {
    if (Date.now() > deadline) throw new Error(`${ids.size - finished.size} runs still not final\n${await cluster.diagnostics()}`);
    // The client's end time is only as fine as this interval; the server's is exact.
    await sleep(100);
    for (const workspaceId of workspaceIds) {
      for (const r of await runsOf(cluster, workspaceId)) if (ids.has(r.id) && isFinal(r.attributes.status)) finished.set(r.id, r);
    }
  }
  const clientMs = performance.now() - started;
  const all = [...finished.values()];
  const firstQueued = Math.min(...all.map((r) => Date.parse(r.attributes['status-timestamps']['pending-at']!)));
  const lastApplied = Math.max(...all.map((r) => Date.parse(r.attributes['status-timestamps']['applied-at'] ?? r.attributes['status-timestamps']['errored-at'] ?? '')));
  return { serverMs: lastApplied - firstQueued, clientMs, notApplied: all.filter((r) => r.attributes.status !== 'applied').length };
}

export async function throughput(hooks: Hooks): Promise<Record<string, unknown>> {
  const cluster = await setupCluster(hooks, backend, { agents: 1, concurrency: parallel, entryPoint });
  const workspaceIds = [cluster.workspace.id];
  while (workspaceIds.length < parallel) workspaceIds.push((await cluster.createWorkspace()).id);
  // One warm-up of each, not measured: the first runs pay one-time costs
  // (engine in the page cache, the agent's engine cache) that a long-running agent does not.
  const handDirs = await Promise.all(Array.from({ length: parallel }, () => mkdtemp(path.join(os.tmpdir(), 'bench-throughput-'))));
  hooks.after(() => Promise.all(handDirs.map((dir) => rm(dir, { recursive: true, force: true }))));
  for (const dir of handDirs) await byHand(dir, 'warm-up');
  const warmCv = await uploadConfiguration(cluster.server, cluster.workspace.id, { 'main.tf': mainTf('warm-up') });
  await waitForRunStatus(cluster.server, (await createRun(cluster.server, cluster.workspace.id, warmCv)).id, ['applied'], 120_000, cluster.agents);

  const hand: number[] = [];
  const outpost: OutpostRound[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      hand.push(await allByHand(handDirs, round));
      outpost.push(await allThroughOutpost(cluster, workspaceIds, round));
    } else {
      outpost.push(await allThroughOutpost(cluster, workspaceIds, round));
      hand.push(await allByHand(handDirs, round));
    }
  }
  const rows = outpost.map((o, round) => ({
    round,
    handMs: Math.round(hand[round]!),
    outpostServerMs: o.serverMs,
    outpostClientMs: Math.round(o.clientMs),
    notApplied: o.notApplied,
    ratio: o.serverMs / hand[round]!,
  }));
  const lines = [`throughput: ${runs} plan + apply runs, ${parallel} at a time, wall time (s), ${backend}`];
  lines.push(`${'round'.padEnd(6)} ${'by hand'.padStart(9)} ${'Outpost'.padStart(9)} ${'(client)'.padStart(9)} ${'runs/min'.padStart(9)} ${'÷ hand'.padStart(7)} ${'failed'.padStart(7)}`);
  for (const r of rows) {
    const perMinute = (runs / r.outpostServerMs) * 60_000;
    lines.push(
      `${String(r.round).padEnd(6)} ${(r.handMs / 1000).toFixed(1).padStart(9)} ${(r.outpostServerMs / 1000).toFixed(1).padStart(9)} ${(r.outpostClientMs / 1000).toFixed(1).padStart(9)} ${perMinute.toFixed(0).padStart(9)} ${r.ratio.toFixed(2).padStart(7)} ${String(r.notApplied).padStart(7)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
  return { backend, runs, parallel, rounds: rows };
}
