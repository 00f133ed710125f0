// Kubernetes start latency: how long a queued run waits before its job
// operation says its first line, when each job runs in a pod of its own
// (the kubernetes driver: a controller creates the pod, the worker of the
// node it is scheduled to takes the job over and opens its gate) against
// the reference, an agent on the local driver that runs the job operation
// as a process. Per run:
//
//   time the job operation's first line ("Outpost: fetching job
//   specification") is first seen in the plan log − status-timestamps["plan-queued-at"]
//
// Log chunks carry no time of their own, so the benchmark polls the plan's
// log (GET /api/v2/plans/:id/logs, the whole log so far) every
// BENCH_K8S_POLL_MS (default 20) from the moment the run is created, and
// takes Date.now() when the response that first holds a line arrives: the
// times are late by at most one poll interval plus one request. Everything
// runs on this machine (the cluster's only node), so the server's clock and
// the benchmark's are the same clock; plan-queued-at is stamped in the
// transaction that creates the run (ISO, millisecond resolution).
//
// Also recorded, from queued: the first byte of the log (the controller's
// "creating pod" line on Kubernetes; the agent's own header line on local),
// the agent's header line ("Outpost agent …: plan job …, driver …", written
// by the agent that runs the job right after it reported the start),
// planning-at (that start, server clock) and planned-and-finished-at (server
// clock); and from the agents' own logs (pino JSON, ms, same clock) when the
// job was claimed and, on Kubernetes, when the worker took it over.
//
// Two cases, on one server (SQLite) in two pools, sampled alternately so
// that the machine's noise hits both alike:
// - kubernetes: the controller and a worker (test/support/
//   kubernetes-agents.ts) as agent processes on this host, the test
//   cluster's only node (KUBECONFIG; the agent image is in the cluster);
// - local: one agent on the local driver, the same sources.
// Both run from the sources (as the Kubernetes test helper starts them), so
// the pod runs the unbundled job operation (see docs/benchmarks.md). Runs
// are plan-only runs of a configuration with one output; each case gets
// BENCH_K8S_WARMUPS (default 2) unmeasured runs first (the first Kubernetes
// job copies the job runtime to the node's directories). After each run
// the case waits until its job pod is gone, then BENCH_K8S_GAP_MS (default
// 500), so the next run finds its agents idle. Skipped, with the reason,
// when no cluster answers at KUBECONFIG.
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, createRun, createWorkspace, getRun, readLog, relatedId, uploadConfiguration, type Run } from '../test/support/api-calls.ts';
import { startAgent, type AgentHandle, type ServerHandle } from '../test/support/cluster.ts';
import { setupKubernetesAgents } from '../test/support/kubernetes-agents.ts';
import { kubernetesUnavailable } from '../test/support/kubernetes-cluster.ts';
import { isFinal, runDiagnostics, waitForAgents, waitForRunStatus, waitUntil } from '../test/support/waits.ts';
import { printTable, summarize, type Hooks } from './measure.ts';

const runs = Number(process.env.BENCH_K8S_RUNS ?? 10);
const warmUps = Number(process.env.BENCH_K8S_WARMUPS ?? 2);
const pollMs = Number(process.env.BENCH_K8S_POLL_MS ?? 20);
const gapMs = Number(process.env.BENCH_K8S_GAP_MS ?? 500);
const trivialConfig = { 'main.tf': 'output "x" {\n  value = "kubernetes start"\n}\n' };

const agentHeader = /^Outpost agent \S+: plan job \S+, driver \S+$/m;
const operationFirstLine = /^Outpost: fetching job specification$/m;

/** Milliseconds from plan-queued-at; undefined where a case has no such point. */
interface Sample {
  claimed: number | undefined;
  firstByte: number;
  takenOver: number | undefined;
  started: number;
  agentLine: number;
  operationLine: number;
  finished: number;
}

interface Case {
  name: string;
  server: ServerHandle;
  workspaceId: string;
  configurationVersionId: string;
  /** The agent that claims from the queue, and the one that runs the job (the same one on local). */
  claimer: AgentHandle;
  runner: AgentHandle;
  /** Waits until the case is idle again after a run. */
  settle(): Promise<void>;
}

/** The `time` of the first JSON line of an agent's log with this message about this run. */
function agentLogTime(agent: AgentHandle, runId: string, message: string): number | undefined {
  for (const line of agent.output().split('\n')) {
    if (!line.includes(runId) || !line.includes(message)) continue;
    try {
      const entry = JSON.parse(line) as { time?: number; msg?: string; run?: string };
      if (entry.msg === message && entry.run === runId && typeof entry.time === 'number') return entry.time;
    } catch {
      // Not a JSON line.
    }
  }
  return undefined;
}

/** Polls the plan log until the job operation's first line is in it; when each marker was first seen. */
async function watchPlanLog(target: Case, run: Run): Promise<{ firstByte: number; agentLine: number; operationLine: number }> {
  const planId = relatedId(run, 'plan');
  const deadline = Date.now() + 180_000;
  let firstByte: number | undefined;
  let agentLine: number | undefined;
  for (let poll = 1; ; poll++) {
    const text = await readLog(target.server, planId);
    const seenAt = Date.now();
    if (firstByte === undefined && text.length > 0) firstByte = seenAt;
    if (agentLine === undefined && agentHeader.test(text)) agentLine = seenAt;
    if (operationFirstLine.test(text)) return { firstByte: firstByte!, agentLine: agentLine ?? seenAt, operationLine: seenAt };
    if (seenAt > deadline) throw new Error(`${target.name}: the job operation of run ${run.id} wrote no line within 180 s\n${await runDiagnostics(target.server, run.id, [target.claimer, target.runner])}`);
    // Every half second or so: a run that ended without its operation's line (errored) ends the wait.
    if (poll % Math.max(1, Math.round(500 / pollMs)) === 0) {
      const status = (await getRun(target.server, run.id)).attributes.status;
      if (isFinal(status)) throw new Error(`${target.name}: run ${run.id} ended ${status} before its job operation wrote a line\n${await runDiagnostics(target.server, run.id, [target.claimer, target.runner])}`);
    }
    await sleep(pollMs);
  }
}

async function startOnce(target: Case): Promise<Sample> {
  const created = await createRun(target.server, target.workspaceId, target.configurationVersionId, { planOnly: true });
  const seen = await watchPlanLog(target, created);
  const done = await waitForRunStatus(target.server, created.id, ['planned_and_finished'], 180_000, [target.claimer, target.runner]);
  const stamps = done.attributes['status-timestamps'];
  const [queuedAt, startedAt, finishedAt] = [stamps['plan-queued-at'], stamps['planning-at'], stamps['planned-and-finished-at']];
  if (!queuedAt || !startedAt || !finishedAt) throw new Error(`run ${created.id} lacks plan-queued-at, planning-at or planned-and-finished-at: ${JSON.stringify(stamps)}`);
  const queued = Date.parse(queuedAt);
  const since = (time: number | undefined) => (time === undefined ? undefined : time - queued);
  const claimedAt = agentLogTime(target.claimer, created.id, 'job claimed');
  const takenOverAt = target.runner === target.claimer ? undefined : agentLogTime(target.runner, created.id, 'took over a job pod scheduled to this node');
  await target.settle();
  return {
    claimed: since(claimedAt),
    firstByte: seen.firstByte - queued,
    takenOver: since(takenOverAt),
    started: Date.parse(startedAt) - queued,
    agentLine: seen.agentLine - queued,
    operationLine: seen.operationLine - queued,
    finished: Date.parse(finishedAt) - queued,
  };
}

function column(samples: readonly Sample[], key: keyof Sample): number[] | undefined {
  const values = samples.map((sample) => sample[key]);
  return values.every((value): value is number => value !== undefined) ? values : undefined;
}

function printCase(title: string, samples: readonly Sample[], firstByte: string): Record<string, ReturnType<typeof summarize>> {
  const rows: [string, keyof Sample][] = [
    ['claimed (agent log)', 'claimed'],
    [firstByte, 'firstByte'],
    ['taken over by the worker (its log)', 'takenOver'],
    ['job started (planning-at)', 'started'],
    ["agent's header line seen", 'agentLine'],
    ["job operation's first line seen", 'operationLine'],
    ['planned_and_finished', 'finished'],
  ];
  const table: [string, ReturnType<typeof summarize>][] = [];
  const summaries: Record<string, ReturnType<typeof summarize>> = {};
  for (const [label, key] of rows) {
    const values = column(samples, key);
    if (values === undefined) continue;
    const summary = summarize(values);
    table.push([label, summary]);
    summaries[key] = summary;
  }
  printTable(title, table);
  return summaries;
}

export async function kubernetesStart(hooks: Hooks): Promise<Record<string, unknown>> {
  const unavailable = kubernetesUnavailable();
  if (unavailable !== undefined) {
    process.stdout.write(`kubernetes start: skipped, ${unavailable}\n\n`);
    return { skipped: unavailable };
  }
  const k8s = await setupKubernetesAgents(hooks);
  const controller = await k8s.startController();
  const worker = await k8s.startWorker();
  await waitForAgents(k8s.server, k8s.pool.id, 2, [controller, worker]);
  const noJobPods = () => waitUntil('the job pods to be deleted', async () => (k8s.jobPods().length === 0 ? true : undefined), async () => JSON.stringify(k8s.jobPods()));
  const kubernetes: Case = {
    name: 'kubernetes',
    server: k8s.server,
    workspaceId: k8s.workspace.id,
    configurationVersionId: await uploadConfiguration(k8s.server, k8s.workspace.id, trivialConfig),
    claimer: controller,
    runner: worker,
    async settle() {
      await noJobPods();
      await sleep(gapMs);
    },
  };

  // The reference: a local-driver agent in a pool of its own on the same server.
  const pool = await createPool(k8s.server);
  const workspace = await createWorkspace(k8s.server, { poolId: pool.id, autoApply: false });
  const agent = await startAgent({ url: k8s.podUrl }, { token: pool.token, t: hooks });
  await waitForAgents(k8s.server, pool.id, 1, [agent]);
  const local: Case = {
    name: 'local',
    server: k8s.server,
    workspaceId: workspace.id,
    configurationVersionId: await uploadConfiguration(k8s.server, workspace.id, trivialConfig),
    claimer: agent,
    runner: agent,
    settle: () => sleep(gapMs),
  };

  for (let i = 0; i < warmUps; i++) {
    await startOnce(kubernetes);
    await startOnce(local);
  }
  const samples: { kubernetes: Sample[]; local: Sample[] } = { kubernetes: [], local: [] };
  for (let i = 0; i < runs; i++) {
    samples.kubernetes.push(await startOnce(kubernetes));
    samples.local.push(await startOnce(local));
  }

  const operation = (of: readonly Sample[]) => of.map((sample) => sample.operationLine);
  const paired = samples.kubernetes.map((sample, i) => sample.operationLine - samples.local[i]!.operationLine);
  printTable(`kubernetes start: run queued → job operation's first log line (ms), ${runs} runs each, alternated`, [
    ['kubernetes (controller + worker, pod)', summarize(operation(samples.kubernetes))],
    ['local driver (reference)', summarize(operation(samples.local))],
    ['kubernetes − local, pairwise', summarize(paired)],
  ]);
  const details = {
    kubernetes: printCase('kubernetes driver: from run queued (ms)', samples.kubernetes, "first log byte (controller's line)"),
    local: printCase('local driver: from run queued (ms)', samples.local, "first log byte (agent's line)"),
  };
  return { runs, warmUps, pollMs, gapMs, difference: summarize(paired), ...details, samples };
}
