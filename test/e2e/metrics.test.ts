// Health and metrics end to end: the real server's /metrics after a real
// run (jobs by state, queue depth, agents by status, requests by route
// pattern), and the real agent's health listener (OUTPOST_AGENT_HEALTH_PORT):
// ready once registered, its counters after a run, and not ready while it
// drains on SIGTERM. docs/reliability.md describes what is asserted here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../support/ports.ts';
import { databaseBackends } from '../support/postgres.ts';
import { parseMetrics, samplesOf, valueOf, type Sample } from '../support/prometheus-text.ts';
import { startServer } from '../support/cluster.ts';
import { createPool, createRun, createWorkspace, relatedId, runAction, uploadConfiguration } from '../support/api-calls.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import { exitCodeOf, quickConfig, sleepingApplyConfig } from '../support/job-control.ts';
import { heldCommand, startHeldApply } from '../support/held-apply.ts';

/** Any resource id (`run-` and 16 characters, src/server/ids.ts). */
const resourceId = /\b(org|at|apool|agent|ws|var|cv|run|job|sv|lease|ot)-[A-Za-z0-9]{16}\b/;

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  return { text, samples: parseMetrics(text) };
}

/** A cluster whose one agent serves health and metrics on a free port of the loopback. */
async function clusterWithHealth(t: Parameters<typeof setupCluster>[0], backend: 'sqlite' | 'postgres'): Promise<{ cluster: Cluster; health: string }> {
  const port = await freePort();
  const cluster = await setupCluster(t, backend, {
    // Heartbeats carry the status the server reports; frequent ones make it current quickly.
    serverEnv: { OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s' },
    agentEnv: { OUTPOST_AGENT_HEALTH_PORT: String(port), OUTPOST_AGENT_HEALTH_HOST: '127.0.0.1', OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'drain' },
  });
  return { cluster, health: `http://127.0.0.1:${port}` };
}

async function readyz(health: string): Promise<{ status: number; body: { status?: string; reason?: string } }> {
  const response = await fetch(`${health}/readyz`);
  return { status: response.status, body: (await response.json()) as { status?: string; reason?: string } };
}

for (const backend of databaseBackends()) {
  test(`after a run: the server counts jobs, queues and agents, the agent its jobs and log bytes; no id is a label (${backend})`, async (t) => {
    const { cluster, health } = await clusterWithHealth(t, backend);
    const { server, pool } = cluster;

    assert.equal((await fetch(`${health}/healthz`)).status, 200);
    await waitUntil('the agent to be ready', async () => ((await readyz(health)).status === 200 ? true : undefined), () => cluster.diagnostics());

    const cv = await uploadConfiguration(server, cluster.workspace.id, quickConfig('metrics'));
    const run = await cluster.waitForRun((await createRun(server, cluster.workspace.id, cv)).id, ['applied']);
    // A second pool with no agent: its run waits in the queue.
    const idlePool = await createPool(server);
    const waiting = await createWorkspace(server, { poolId: idlePool.id });
    const queued = await createRun(server, waiting.id, await uploadConfiguration(server, waiting.id, quickConfig('queued')));
    await cluster.waitForRun(queued.id, ['plan_queued']);

    // The agent reports itself idle again at its next heartbeat.
    const { text, samples } = await waitUntil(
      'the server to list the agent idle',
      async () => {
        const scraped = await scrape(server.url);
        return valueOf(scraped.samples, 'outpost_agents', { pool: pool.id, status: 'idle' }) === 1 ? scraped : undefined;
      },
      () => cluster.diagnostics(run.id),
    );
    const why = `${text}\n${await cluster.diagnostics(run.id)}`;
    assert.equal(valueOf(samples, 'outpost_jobs', { state: 'succeeded' }), 2, `plan and apply succeeded\n${why}`);
    assert.equal(valueOf(samples, 'outpost_jobs', { state: 'queued' }), 1, why);
    assert.equal(valueOf(samples, 'outpost_jobs', { state: 'running' }), 0, why);
    assert.equal(valueOf(samples, 'outpost_queue_depth', { pool: idlePool.id }), 1, why);
    assert.equal(valueOf(samples, 'outpost_queue_depth', { pool: pool.id }), 0, why);
    assert.equal(valueOf(samples, 'outpost_agents', { pool: pool.id, status: 'busy' }), 0, why);
    assert.equal(samplesOf(samples, 'outpost_agents', { pool: idlePool.id }).length, 0, 'a pool without agents has no agent series');

    const requests = (labels: Record<string, string>) => valueOf(samples, 'outpost_http_request_duration_seconds_count', labels) ?? 0;
    assert.ok(requests({ method: 'GET', route: '/api/v2/runs/:id', status_code: '200' }) >= 1, why);
    assert.ok(requests({ method: 'POST', route: '/api/v2/runs', status_code: '201' }) === 2, why);
    assert.ok(requests({ method: 'PUT', route: '/api/agent/v1/jobs/:id/logs', status_code: '200' }) >= 2, why);
    assert.ok(requests({ method: 'POST', route: '/api/agent/v1/poll', status_code: '200' }) >= 2, why);
    const routes = [...new Set(samplesOf(samples, 'outpost_http_request_duration_seconds_count').map((sample) => sample.labels.route!))];
    assert.deepEqual(routes.filter((route) => resourceId.test(route)), [], `no id in a route label: ${routes.join(' ')}`);
    for (const id of [run.id, queued.id, cluster.workspace.id, waiting.id, cv, relatedId(run, 'plan')]) {
      assert.ok(!text.includes(id), `${id} appears in /metrics`);
    }
    assert.ok(valueOf(samples, 'process_resident_memory_bytes')! > 0);

    const agent = (await scrape(health)).samples;
    const agentWhy = JSON.stringify(agent.filter((sample) => sample.name.startsWith('outpost_agent_')));
    assert.equal(valueOf(agent, 'outpost_agent_jobs_finished_total', { result: 'succeeded' }), 2, agentWhy);
    assert.equal(valueOf(agent, 'outpost_agent_jobs_finished_total', { result: 'failed' }), 0, agentWhy);
    assert.equal(valueOf(agent, 'outpost_agent_jobs_running'), 0, agentWhy);
    assert.ok(valueOf(agent, 'outpost_agent_log_bytes_total')! > 0, agentWhy);
    assert.equal(valueOf(agent, 'outpost_agent_claim_latency_seconds_count'), 2, agentWhy);
    assert.equal(valueOf(agent, 'outpost_agent_heartbeat_failures_total'), 0, agentWhy);
    assert.ok(samplesOf(agent, 'outpost_agent_provider_cache_requests_total').length === 2, agentWhy);
    assert.ok(valueOf(agent, 'process_resident_memory_bytes')! > 0);
  });
}

test('/readyz answers 503 while the agent drains on SIGTERM; /healthz stays 200 (sqlite)', async (t) => {
  const { cluster, health } = await clusterWithHealth(t, 'sqlite');
  const agent = cluster.agents[0]!;
  const command = heldCommand(t, agent);
  await waitUntil('the agent to be ready', async () => ((await readyz(health)).status === 200 ? true : undefined), () => cluster.diagnostics());

  const run = await startHeldApply(cluster, sleepingApplyConfig(command), command);
  assert.equal(valueOf((await scrape(health)).samples, 'outpost_agent_jobs_running'), 1);

  agent.process.kill('SIGTERM');
  const draining = await waitUntil(
    '/readyz to answer 503',
    async () => {
      const answer = await readyz(health);
      return answer.status === 503 ? answer : undefined;
    },
    () => cluster.diagnostics(run.id),
  );
  assert.equal(draining.body.status, 'draining');
  assert.match(draining.body.reason ?? '', /stopping/);
  assert.equal((await fetch(`${health}/healthz`)).status, 200, 'a draining agent is alive');
  await waitUntil(
    'the server to list the agent draining',
    async () => (valueOf((await scrape(cluster.server.url)).samples, 'outpost_agents', { pool: cluster.pool.id, status: 'draining' }) === 1 ? true : undefined),
    () => cluster.diagnostics(run.id),
  );

  // Draining waits for the job: canceling the run ends it, and the agent exits.
  await runAction(cluster.server, run.id, 'cancel');
  await cluster.waitForRun(run.id, ['canceled']);
  assert.equal(await exitCodeOf(agent), 0, agent.output());
  await assert.rejects(fetch(`${health}/healthz`), 'the listener closes with the agent');
});

test('OUTPOST_METRICS_ENABLED=false: the server answers 404 at /metrics and still serves /healthz and /readyz (sqlite)', async (t) => {
  const server = await startServer({ backend: 'sqlite', t, env: { OUTPOST_METRICS_ENABLED: 'false' } });
  const metrics = await fetch(`${server.url}/metrics`);
  await metrics.body?.cancel();
  assert.equal(metrics.status, 404);
  for (const probe of ['/healthz', '/readyz']) {
    const response = await fetch(`${server.url}${probe}`);
    await response.body?.cancel();
    assert.equal(response.status, 200, probe);
  }
});
