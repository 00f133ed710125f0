// The control plane under many agents, protocol-level: simulated agents
// (bench/simulated-agents.ts, in separate load-generator processes) register,
// long-poll and heartbeat at the server's interval against one real server
// process, on SQLite and on PostgreSQL. For each step (100, 300, 1,000 agents
// by default) a fresh server measures, over a fixed window:
// - heartbeat latency p50 / p99, as the agents see it (send → answer);
// - claims per second: K plan-only runs queued in a workspace of the pool,
//   which the agents claim, start, report succeeded and finish through the
//   protocol (no engine), so each claim costs what a real one does;
// - the same from one more agent in the bench's own process, heartbeating
//   every 50 ms on its own connection (bench/support/heartbeat-probe.ts):
//   the server's share of the latency, without the load generators' delays;
// - the server process's CPU (/proc/<pid>/stat) and its RSS at the end.
// BENCH_SCALE_QUEUE=before (default) queues the K runs before the agents ask
// for work and then lets them all claim at once: that measures dispatch
// capacity alone. =during creates them through the API inside the window,
// which also counts the cost of creating runs while 1,000 polls are waiting.
import type { DatabaseBackend } from '../test/support/postgres.ts';
import { postgresUrl } from '../test/support/postgres.ts';
import { startServer, type ServerHandle } from '../test/support/cluster.ts';
import { shippedEntryPoint as entryPoint } from '../test/support/cluster-environment.ts';
import { createPool, createRun, createWorkspace, uploadConfiguration } from '../test/support/api-calls.ts';
import type { Hooks } from './measure.ts';
import { startHeartbeatProbe } from './support/heartbeat-probe.ts';
import { startLoad, quantile } from './support/load-generator.ts';
import { cpuMeter, cpuSecondsByName, rssMiB } from './support/process-stats.ts';

const list = (value: string | undefined, fallback: string) => (value ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);

export interface StepOptions {
  backend: DatabaseBackend;
  agents: number;
  seconds: number;
  warmupSeconds: number;
  runs: number;
  queue: 'before' | 'during';
  processes?: number;
  /** Server environment overrides (e.g. OUTPOST_AGENT_HEARTBEAT_INTERVAL). */
  serverEnv?: Record<string, string>;
}

export interface StepResult {
  backend: DatabaseBackend;
  agents: number;
  registerMs: number;
  heartbeats: number;
  heartbeatP50: number;
  heartbeatP99: number;
  /** p99 of the heartbeats sent while the queued runs were being claimed. */
  heartbeatP99WhileClaiming: number;
  /** The heartbeat probe's p99 and worst latency over the window. */
  probeHeartbeatP99: number;
  probeHeartbeatMax: number;
  claims: number;
  finished: number;
  claimsPerSecond: number;
  /** Shares of one core over the window. */
  serverCpu: number;
  generatorCpu: number;
  /** Every `postgres` process on the machine, so other users of it count too. */
  postgresCpu: number | undefined;
  serverRssMiB: number | undefined;
  /** Before any simulated agent registered (runs already queued in `before` mode). */
  serverRssBeforeMiB: number | undefined;
  errors: Record<string, number>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function queueRuns(server: ServerHandle, workspaceId: string, cv: string, count: number): Promise<void> {
  let next = 0;
  // A few at a time, as several API clients would: one at a time would
  // measure the API's latency rather than the dispatch.
  const worker = async () => {
    while (next++ < count) await createRun(server, workspaceId, cv, { planOnly: true, message: 'bench' });
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

export async function scaleStep(options: StepOptions): Promise<StepResult> {
  const server = await startServer({ backend: options.backend, entryPoint, ...(options.serverEnv ? { env: options.serverEnv } : {}) });
  try {
    const serverPid = server.process.pid!;
    const pool = await createPool(server);
    const workspace = await createWorkspace(server, { poolId: pool.id });
    const cv = await uploadConfiguration(server, workspace.id, { 'main.tf': 'output "x" {\n  value = 1\n}\n' });
    if (options.queue === 'before') await queueRuns(server, workspace.id, cv, options.runs);
    const serverRssBefore = rssMiB(serverPid);
    const load = await startLoad({ url: server.url, poolToken: pool.token, agents: options.agents, claimAtOnce: options.queue === 'during', ...(options.processes ? { processes: options.processes } : {}) });
    try {
      await sleep(options.warmupSeconds * 1000);
      const probe = await startHeartbeatProbe(server.url, pool.token);
      const serverMeter = cpuMeter(serverPid);
      const postgresStart = options.backend === 'postgres' ? cpuSecondsByName('postgres') : 0;
      const windowStart = performance.timeOrigin + performance.now();
      load.begin();
      const creating = options.queue === 'during' ? queueRuns(server, workspace.id, cv, options.runs) : (load.startClaiming(), Promise.resolve());
      await Promise.all([sleep(options.seconds * 1000), creating]);
      const windowEnd = performance.timeOrigin + performance.now();
      const stats = await load.end();
      const probeLatencies = await probe.stop();
      const serverCpu = serverMeter.stop().coreShare;
      const windowSeconds = (windowEnd - windowStart) / 1000;
      const postgresCpu = options.backend === 'postgres' ? (cpuSecondsByName('postgres') - postgresStart) / windowSeconds : undefined;
      const serverRss = rssMiB(serverPid);
      // Claims per second over the time it took to work through the queue
      // (all of the window when the queue was not emptied).
      const drained = stats.finishes.length >= options.runs;
      const claimingEnd = options.runs === 0 ? windowStart : drained ? Math.max(...stats.finishes) : windowEnd;
      const claimingSeconds = Math.max(0.001, (claimingEnd - windowStart) / 1000);
      const latencies = stats.heartbeats.map(([, ms]) => ms);
      const whileClaiming = stats.heartbeats.filter(([at]) => at <= claimingEnd).map(([, ms]) => ms);
      return {
        backend: options.backend,
        agents: options.agents,
        registerMs: load.registerMs,
        heartbeats: latencies.length,
        heartbeatP50: quantile(latencies, 0.5),
        heartbeatP99: quantile(latencies, 0.99),
        heartbeatP99WhileClaiming: quantile(whileClaiming, 0.99),
        probeHeartbeatP99: quantile(probeLatencies, 0.99),
        probeHeartbeatMax: Math.max(...probeLatencies),
        claims: stats.claims.length,
        finished: stats.finishes.length,
        claimsPerSecond: stats.claims.length / claimingSeconds,
        serverCpu,
        generatorCpu: stats.generatorCpuSeconds / windowSeconds,
        postgresCpu,
        serverRssMiB: serverRss,
        serverRssBeforeMiB: serverRssBefore,
        errors: stats.errors,
      };
    } finally {
      await load.stop();
    }
  } finally {
    await server.cleanup();
  }
}

const percent = (share: number | undefined) => (share === undefined ? '-' : `${(share * 100).toFixed(0)}%`);
const ms = (value: number) => (Number.isNaN(value) ? '-' : value.toFixed(1));

export function printScaleTable(title: string, rows: readonly StepResult[]): void {
  const header = ['agents', 'register s', 'hb n', 'hb p50 ms', 'hb p99 ms', 'p99 claiming', 'probe p99/max', 'claims', 'claims/s', 'server CPU', 'pg CPU*', 'loadgen CPU', 'server RSS MiB'];
  const lines = rows.map((r) => [
    String(r.agents),
    (r.registerMs / 1000).toFixed(1),
    String(r.heartbeats),
    ms(r.heartbeatP50),
    ms(r.heartbeatP99),
    ms(r.heartbeatP99WhileClaiming),
    `${ms(r.probeHeartbeatP99)}/${ms(r.probeHeartbeatMax)}`,
    `${r.claims}/${r.finished}`,
    r.claimsPerSecond.toFixed(0),
    percent(r.serverCpu),
    percent(r.postgresCpu),
    percent(r.generatorCpu),
    r.serverRssMiB === undefined ? '-' : r.serverRssMiB.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i]!)).join('  ');
  const out = [title, format(header), ...lines.map(format)];
  for (const r of rows) {
    for (const [error, count] of Object.entries(r.errors)) out.push(`  ${r.agents} agents: ${count}× ${error}`);
  }
  process.stdout.write(`${out.join('\n')}\n\n`);
}

export async function controlPlaneScale(_hooks: Hooks): Promise<Record<string, unknown>> {
  const steps = list(process.env.BENCH_SCALE_AGENTS, '100,300,1000').map(Number);
  const seconds = Number(process.env.BENCH_SCALE_SECONDS ?? 30);
  const warmupSeconds = Number(process.env.BENCH_SCALE_WARMUP_SECONDS ?? 5);
  const runs = Number(process.env.BENCH_SCALE_RUNS ?? 1000);
  const queue = process.env.BENCH_SCALE_QUEUE === 'during' ? 'during' : 'before';
  const processes = process.env.BENCH_SCALE_PROCESSES ? Number(process.env.BENCH_SCALE_PROCESSES) : undefined;
  const serverEnv = process.env.BENCH_SCALE_HEARTBEAT ? { OUTPOST_AGENT_HEARTBEAT_INTERVAL: process.env.BENCH_SCALE_HEARTBEAT } : undefined;
  const results: Record<string, StepResult[] | string> = {};
  for (const backend of list(process.env.BENCH_SCALE_BACKENDS, 'sqlite,postgres') as DatabaseBackend[]) {
    if (backend === 'postgres' && postgresUrl() === undefined) {
      process.stdout.write('control plane scale, postgres: skipped (OUTPOST_TEST_POSTGRES_URL is not set)\n\n');
      results[backend] = 'skipped: OUTPOST_TEST_POSTGRES_URL is not set';
      continue;
    }
    const rows: StepResult[] = [];
    for (const agents of steps) {
      rows.push(await scaleStep({ backend, agents, seconds, warmupSeconds, runs, queue, ...(processes ? { processes } : {}), ...(serverEnv ? { serverEnv } : {}) }));
    }
    printScaleTable(
      `control plane scale, ${backend}: ${seconds} s window per step, ${runs} plan-only runs queued ${queue} the window; CPU as share of one core (${'*'}all postgres processes on the machine)`,
      rows,
    );
    results[backend] = rows;
  }
  return { seconds, warmupSeconds, runs, queue, results };
}
