// Memory footprint (RSS from /proc/<pid>/status), against the design's
// targets (idle agent ≤ 60 MB, server with 1,000 agents ≤ 200 MB), of what
// ships: the server and agents run bin/outpost.js, the compiled dist/ (run
// `npm run build` first), and so do the job operations they start:
// - the server with nothing connected, as a baseline;
// - a real agent (`outpost agent run`, local driver), registered and idle for
//   BENCH_FOOTPRINT_IDLE_SECONDS: the agent process alone, and separately any
//   child process it keeps;
// - the same agent at concurrency 4 with four plans held mid-plan (each reads
//   a terraform_remote_state from an HTTP endpoint here that does not answer
//   until measured): the agent process, and separately the job operations and
//   the engines it started;
// - the server with BENCH_FOOTPRINT_AGENTS simulated agents connected
//   (bench/control-plane-scale.ts's harness, no runs).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAgent, startServer, type AgentHandle } from '../test/support/cluster.ts';
import { shippedEntryPoint as entryPoint } from '../test/support/cluster-environment.ts';
import { createPool, createRun, createWorkspace, listAgents, uploadConfiguration } from '../test/support/api-calls.ts';
import { waitUntil, waitForRunStatus } from '../test/support/waits.ts';
import { scaleStep } from './control-plane-scale.ts';
import type { Hooks } from './measure.ts';
import { descendants, rssMiB, type ProcessInfo } from './support/process-stats.ts';

const idleSeconds = Number(process.env.BENCH_FOOTPRINT_IDLE_SECONDS ?? 10);
const simulatedAgents = Number(process.env.BENCH_FOOTPRINT_AGENTS ?? 1000);
const heldJobs = 4;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (processes: readonly ProcessInfo[]) => processes.reduce((total, p) => total + p.rssMiB, 0);
const describe = (processes: readonly ProcessInfo[]) => processes.map((p) => `${p.comm}:${p.rssMiB.toFixed(0)}`).join(' ') || 'none';

// The remote state every held plan reads. Requests are answered only on
// release(), with an empty state, so the plans then finish normally.
async function startHeldStateEndpoint(): Promise<{ url: string; held(): number; release(): void; close(): Promise<void> }> {
  const waiting: ServerResponse[] = [];
  let released = false;
  const emptyState = JSON.stringify({ version: 4, terraform_version: '1.10.0', serial: 1, lineage: 'bench-footprint', outputs: {}, resources: [] });
  const answer = (response: ServerResponse) => response.writeHead(200, { 'content-type': 'application/json' }).end(emptyState);
  const server = createServer((_request: IncomingMessage, response: ServerResponse) => (released ? answer(response) : waiting.push(response)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => waiting.length,
    release() {
      released = true;
      waiting.splice(0).forEach(answer);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function heldConfiguration(url: string, i: number): Record<string, string> {
  return { 'main.tf': `data "terraform_remote_state" "held" {\n  backend = "http"\n  config = {\n    address = "${url}/state-${i}"\n  }\n}\n` };
}

export async function footprint(hooks: Hooks): Promise<Record<string, unknown>> {
  const server = await startServer({ backend: 'sqlite', entryPoint });
  hooks.after(() => server.cleanup());
  const pool = await createPool(server);
  const serverIdle = rssMiB(server.process.pid!);

  const registered = async (agent: AgentHandle) =>
    waitUntil(`agent ${agent.name} to register`, async () => ((await listAgents(server, pool.id)).some((a) => a.attributes.name === agent.name) ? true : undefined), () => agent.output(), 30_000);

  const idle = await startAgent(server, { token: pool.token, entryPoint });
  hooks.after(() => idle.cleanup());
  await registered(idle);
  await sleep(idleSeconds * 1000);
  const idleAgent = rssMiB(idle.process.pid!);
  const idleChildren = descendants(idle.process.pid!);
  await idle.stop();

  const endpoint = await startHeldStateEndpoint();
  hooks.after(() => endpoint.close());
  const busy = await startAgent(server, { token: pool.token, entryPoint, env: { OUTPOST_AGENT_CONCURRENCY: String(heldJobs) } });
  hooks.after(() => busy.cleanup());
  await registered(busy);
  const workspace = await createWorkspace(server, { poolId: pool.id });
  const runs = [];
  for (let i = 0; i < heldJobs; i++) {
    const cv = await uploadConfiguration(server, workspace.id, heldConfiguration(endpoint.url, i));
    // Plan-only runs of one workspace run side by side; other runs would queue.
    runs.push(await createRun(server, workspace.id, cv, { planOnly: true }));
  }
  await waitUntil(`${heldJobs} engines to ask for the held state`, async () => (endpoint.held() >= heldJobs ? true : undefined), () => busy.output(), 120_000);
  // Let the engines settle past their start-up allocations.
  await sleep(2_000);
  const busyAgent = rssMiB(busy.process.pid!);
  const busyChildren = descendants(busy.process.pid!);
  const engines = busyChildren.filter((p) => p.comm.startsWith('tofu'));
  const operations = busyChildren.filter((p) => !p.comm.startsWith('tofu'));
  endpoint.release();
  for (const run of runs) await waitForRunStatus(server, run.id, ['planned_and_finished'], 120_000).catch((error: Error) => process.stderr.write(`footprint: ${error.message.split('\n')[0]}\n`));
  await busy.stop();

  const scale = await scaleStep({ backend: 'sqlite', agents: simulatedAgents, seconds: Math.max(5, idleSeconds), warmupSeconds: 5, runs: 0, queue: 'before' });

  const rows: [string, number | undefined, string][] = [
    ['server, nothing connected (sqlite)', serverIdle, ''],
    [`agent, idle ${idleSeconds} s after registering`, idleAgent, `children: ${describe(idleChildren)}`],
    [`agent with ${heldJobs} plans held: agent process`, busyAgent, ''],
    [`  its job operations (${operations.length})`, sum(operations), describe(operations)],
    [`  its engines (${engines.length})`, sum(engines), describe(engines)],
    [`server, before the simulated agents (sqlite)`, scale.serverRssBeforeMiB, ''],
    [`server, ${simulatedAgents} simulated agents connected (sqlite)`, scale.serverRssMiB, `hb p99 ${scale.heartbeatP99.toFixed(1)} ms over ${scale.heartbeats}`],
  ];
  const out = ['footprint: RSS (MiB); targets: idle agent ≤ 60 MB, server with 1,000 agents ≤ 200 MB'];
  for (const [what, value, note] of rows) out.push(`${what.padEnd(52)} ${(value === undefined ? '-' : value.toFixed(0)).padStart(6)}  ${note}`);
  process.stdout.write(`${out.join('\n')}\n\n`);
  return {
    idleSeconds,
    serverIdleMiB: serverIdle,
    idleAgentMiB: idleAgent,
    idleAgentChildren: idleChildren,
    busyAgentMiB: busyAgent,
    busyOperations: operations,
    busyEngines: engines,
    simulatedAgents,
    serverBeforeAgentsMiB: scale.serverRssBeforeMiB,
    serverWithAgentsMiB: scale.serverRssMiB,
  };
}
