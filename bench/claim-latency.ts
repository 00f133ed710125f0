// Claim latency: how long a queued run waits before an agent is running its
// plan job. What is measured, per run, is the server's own clock on both
// ends, so the benchmark's polling adds nothing:
//
//   status-timestamps["planning-at"] − status-timestamps["plan-queued-at"]
//
// plan-queued-at is stamped in the transaction that creates the run and
// queues its plan job (runs/service.ts createRun → queueJob); planning-at is
// stamped when the agent reports the job started (POST /api/agent/v1/jobs/
// :id/start → jobs/service.ts startJob), which the agent sends right after
// its long-poll returns the claim and before it starts the engine. So the
// span covers: commit, the pool notification waking the agent's long-poll,
// the claim query, the poll response, and the agent's start request. Both
// stamps are ISO strings with millisecond resolution.
//
// Two cases, on one server (SQLite by default; BENCH_BACKEND=postgres):
// - idle: one agent (concurrency 1) waiting in its long-poll; a run is only
//   created once the previous one has ended and the agent has had
//   BENCH_CLAIM_GAP_MS to poll again, so it is really idle;
// - busy: the first agent is held by a plan that blocks on an HTTP endpoint
//   that never answers, and a second agent (concurrency 1) takes the runs.
// Runs are plan-only runs of a configuration with one output and no
// resources, so each job ends in about a second.
import { setTimeout as sleep } from 'node:timers/promises';
import { createRun, getRun, uploadConfiguration } from '../test/support/api-calls.ts';
import { setupCluster, type Cluster } from '../test/support/test-cluster.ts';
import { waitForRunStatus } from '../test/support/waits.ts';
import { shippedEntryPoint as entryPoint } from '../test/support/cluster-environment.ts';
import { HeldEndpoint, planTimeReadConfig } from '../test/support/job-control.ts';
import type { DatabaseBackend } from '../test/support/postgres.ts';
import type { Hooks } from './measure.ts';
import { percentiles, printPercentiles } from './percentiles.ts';

const runs = Number(process.env.BENCH_CLAIM_RUNS ?? 200);
const gapMs = Number(process.env.BENCH_CLAIM_GAP_MS ?? 300);
const warmUps = 3;
const backend = (process.env.BENCH_BACKEND ?? 'sqlite') as DatabaseBackend;
const trivialConfig = { 'main.tf': 'output "x" {\n  value = "claim latency"\n}\n' };

/** Server-side queued → running of one plan-only run, in ms. */
async function claimOnce(cluster: Cluster, configurationVersionId: string): Promise<number> {
  const created = await createRun(cluster.server, cluster.workspace.id, configurationVersionId, { planOnly: true });
  const done = await waitForRunStatus(cluster.server, created.id, ['planned_and_finished'], 120_000, cluster.agents);
  const stamps = done.attributes['status-timestamps'];
  const queuedAt = stamps['plan-queued-at'];
  const runningAt = stamps['planning-at'];
  if (!queuedAt || !runningAt) throw new Error(`run ${created.id} lacks plan-queued-at or planning-at: ${JSON.stringify(stamps)}`);
  // Let the agent get back into its long-poll with a free slot: otherwise
  // the next run would measure the agent's re-poll, not an idle agent.
  await sleep(gapMs);
  return Date.parse(runningAt) - Date.parse(queuedAt);
}

async function sample(cluster: Cluster, configurationVersionId: string): Promise<number[]> {
  for (let i = 0; i < warmUps; i++) await claimOnce(cluster, configurationVersionId);
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push(await claimOnce(cluster, configurationVersionId));
  return samples;
}

export async function claimLatency(hooks: Hooks): Promise<Record<string, unknown>> {
  const cluster = await setupCluster(hooks, backend, { agents: 1, concurrency: 1, entryPoint });
  const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, trivialConfig);
  const idle = await sample(cluster, cv);

  // Occupy the first agent's only slot with a plan that never finishes
  // (it waits for an HTTP answer that never comes), then add the second.
  const endpoint = await HeldEndpoint.start(hooks);
  const heldWorkspace = await cluster.createWorkspace();
  const heldCv = await uploadConfiguration(cluster.server, heldWorkspace.id, planTimeReadConfig(endpoint.url('/state')));
  const held = await createRun(cluster.server, heldWorkspace.id, heldCv, { planOnly: true });
  await waitForRunStatus(cluster.server, held.id, ['planning'], 60_000, cluster.agents);
  await cluster.startAgent();
  const busy = await sample(cluster, cv);
  // Guard: had the held plan ended, the first agent would have been free and
  // some "busy" samples would really be idle ones.
  const heldStatus = (await getRun(cluster.server, held.id)).attributes.status;
  if (heldStatus !== 'planning') throw new Error(`the plan holding the first agent ended (${heldStatus}) before the busy samples were done`);

  const idleLatency = percentiles(idle);
  const busyLatency = percentiles(busy);
  printPercentiles(`claim latency: run queued → job running, server clock (ms), ${backend}`, [
    ['idle agent', idleLatency],
    ['second agent, first one busy', busyLatency],
  ]);
  const target = { p50: 20, p99: 100 };
  process.stdout.write(`target: p50 ≤ ${target.p50} ms, p99 ≤ ${target.p99} ms\n\n`);
  return { backend, runs, gapMs, target, idle: idleLatency, busy: busyLatency, samples: { idle, busy } };
}
