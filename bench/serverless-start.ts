// Serverless start latency: how long a queued run waits before its job
// operation says its first line when its agent is started for it (the
// pool's webhook → `outpost launcher` → an outpost/agent-runner container
// on the Docker Engine → the agent registers and claims that job), against
// the reference, the same image running as a resident agent that is
// already connected and idle: the price of scale-to-zero. Per run:
//
//   time the job operation's first line ("Outpost: fetching job
//   specification") is first seen in the plan log − status-timestamps["plan-queued-at"]
//
// The plan's log is read every BENCH_SLS_POLL_MS (default 20) from the
// moment the run is created, so each time is late by at most one poll plus
// one request; server, launcher, containers and benchmark share one clock.
// Also recorded from queued: the delivery answered (its record's
// updated-at), the agent's header line, planned-and-finished. Plan-only
// runs of a configuration with one output, each case in a pool of its own on
// one server (SQLite), BENCH_SLS_WARMUPS (default 1) unmeasured runs each,
// then alternating; after each serverless run the case waits until its
// container is gone. Skipped, with the reason, without Docker or the image.
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebhookDelivery } from '../src/protocol/api-resources.ts';
import { apiCall, createPool, createRun, createWorkspace, readLog, relatedId, uploadConfiguration } from '../test/support/api-calls.ts';
import type { ServerHandle } from '../test/support/cluster.ts';
import { startContainerReachableServer } from '../test/support/container-reachable-server.ts';
import { docker, dockerUnavailable } from '../test/support/docker-cluster.ts';
import { engineForContainers, startLauncher } from '../test/support/launcher.ts';
import { waitForAgents, waitForRunStatus, waitUntil } from '../test/support/waits.ts';
import { printTable, summarize, type Hooks } from './measure.ts';

const runs = Number(process.env.BENCH_SLS_RUNS ?? 10);
const warmUps = Number(process.env.BENCH_SLS_WARMUPS ?? 1);
const pollMs = Number(process.env.BENCH_SLS_POLL_MS ?? 20);
const image = 'outpost/agent-runner:latest';
const trivialConfig = { 'main.tf': 'output "x" {\n  value = "serverless start"\n}\n' };
const agentHeader = /^Outpost agent \S+: plan job \S+, driver \S+$/m;
const operationFirstLine = /^Outpost: fetching job specification$/m;

interface Sample {
  delivered: number | undefined;
  agentLine: number;
  operationLine: number;
  finished: number;
}

interface Case {
  poolId: string;
  workspaceId: string;
  configurationVersionId: string;
  settle(): Promise<void>;
}

async function startOnce(server: ServerHandle, target: Case): Promise<Sample> {
  const run = await createRun(server, target.workspaceId, target.configurationVersionId, { planOnly: true });
  const planId = relatedId(run, 'plan');
  let agentLine: number | undefined;
  let operationLine: number | undefined;
  const deadline = Date.now() + 180_000;
  while (operationLine === undefined) {
    const text = await readLog(server, planId);
    const seenAt = Date.now();
    if (agentLine === undefined && agentHeader.test(text)) agentLine = seenAt;
    if (operationFirstLine.test(text)) operationLine = seenAt;
    else if (seenAt > deadline) throw new Error(`run ${run.id}: no job operation line within 180 s`);
    else await sleep(pollMs);
  }
  const done = await waitForRunStatus(server, run.id, ['planned_and_finished'], 180_000);
  const stamps = done.attributes['status-timestamps'];
  const queued = Date.parse(stamps['plan-queued-at']!);
  const deliveries = (await apiCall<{ data: WebhookDelivery[] }>(server, 'GET', `/api/v2/agent-pools/${target.poolId}/webhook-deliveries?page%5Bsize%5D=100`, undefined, 200)).data;
  const ours = deliveries.find((d) => d.attributes.status === 'delivered' && Date.parse(d.attributes['created-at']) >= queued);
  await target.settle();
  return {
    delivered: ours ? Date.parse(ours.attributes['updated-at']) - queued : undefined,
    agentLine: (agentLine ?? operationLine) - queued,
    operationLine: operationLine - queued,
    finished: Date.parse(stamps['planned-and-finished-at']!) - queued,
  };
}

export async function serverlessStart(hooks: Hooks): Promise<Record<string, unknown>> {
  const unavailable = dockerUnavailable([image]);
  if (unavailable !== undefined) {
    process.stdout.write(`serverless start: skipped, ${unavailable}\n\n`);
    return { skipped: unavailable };
  }
  const { server } = await startContainerReachableServer(hooks, { OUTPOST_WEBHOOK_INTERVAL: '2s' });
  const tofu = await engineForContainers(hooks);
  const agentEnv = { OUTPOST_AGENT_ENGINE_PATH: tofu };

  // Serverless: a pool whose webhook is the launcher.
  const pool = await createPool(server);
  const workspace = await createWorkspace(server, { poolId: pool.id, autoApply: false });
  const set = await apiCall<{ data: { attributes: { 'signing-secret'?: string } } }>(server, 'PUT', `/api/v2/agent-pools/${pool.id}/webhook`, { data: { type: 'pool-webhooks', attributes: { url: 'http://127.0.0.1:9/', enabled: false } } }, 200);
  const launcher = await startLauncher(hooks, {
    OUTPOST_LAUNCHER_SIGNING_SECRET: set.data.attributes['signing-secret']!,
    OUTPOST_AGENT_TOKEN: pool.token,
    OUTPOST_LAUNCHER_IMAGE: image,
    OUTPOST_LAUNCHER_DOCKER_VOLUMES: `${tofu}:${tofu}:ro`,
    OUTPOST_LAUNCHER_AGENT_ENV: JSON.stringify(agentEnv),
  });
  await apiCall(server, 'PUT', `/api/v2/agent-pools/${pool.id}/webhook`, { data: { type: 'pool-webhooks', attributes: { url: `${launcher.url}/webhook`, enabled: true } } }, 200);
  const noContainer = () =>
    waitUntil('the agent container to be gone', async () => ((await docker(['ps', '-aq', '--filter', `label=outpost.dev/pool=${pool.id}`])).trim() === '' ? true : undefined), () => launcher.log(), 60_000);
  const serverless: Case = { poolId: pool.id, workspaceId: workspace.id, configurationVersionId: await uploadConfiguration(server, workspace.id, trivialConfig), settle: async () => void (await noContainer()) };

  // The reference: the same image as a resident agent, connected and idle.
  const residentPool = await createPool(server);
  const residentWorkspace = await createWorkspace(server, { poolId: residentPool.id, autoApply: false });
  const name = `outpost-bench-resident-${residentPool.id.toLowerCase()}`;
  await docker(['run', '-d', '--rm', '--name', name, '-v', `${tofu}:${tofu}:ro`, '-e', `OUTPOST_AGENT_TOKEN=${residentPool.token}`, '-e', `OUTPOST_AGENT_ENGINE_PATH=${tofu}`, '-e', 'OUTPOST_AGENT_DRIVER=local', image, 'run']);
  hooks.after(() => docker(['rm', '-f', name]).catch(() => undefined));
  await waitForAgents(server, residentPool.id, 1);
  const resident: Case = { poolId: residentPool.id, workspaceId: residentWorkspace.id, configurationVersionId: await uploadConfiguration(server, residentWorkspace.id, trivialConfig), settle: () => sleep(500) };

  for (let i = 0; i < warmUps; i++) {
    await startOnce(server, serverless);
    await startOnce(server, resident);
  }
  const samples: { serverless: Sample[]; resident: Sample[] } = { serverless: [], resident: [] };
  for (let i = 0; i < runs; i++) {
    samples.serverless.push(await startOnce(server, serverless));
    samples.resident.push(await startOnce(server, resident));
  }
  const of = (list: readonly Sample[], key: keyof Sample) => summarize(list.map((sample) => sample[key] ?? NaN));
  printTable(`serverless start: run queued → job operation's first log line (ms), ${runs} runs each, alternated`, [
    ['launcher + container per job', of(samples.serverless, 'operationLine')],
    ['resident agent container (reference)', of(samples.resident, 'operationLine')],
  ]);
  printTable('serverless (launcher, docker): from run queued (ms)', [
    ['webhook delivered (202)', of(samples.serverless, 'delivered')],
    ["agent's header line seen", of(samples.serverless, 'agentLine')],
    ["job operation's first line seen", of(samples.serverless, 'operationLine')],
    ['planned_and_finished', of(samples.serverless, 'finished')],
  ]);
  return { runs, warmUps, pollMs, serverless: samples.serverless, resident: samples.resident };
}
