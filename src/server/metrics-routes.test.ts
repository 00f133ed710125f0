// The control plane's /metrics against a real SQLite database: the gauges
// read it at scrape time, and the request histogram labels requests by route
// pattern so ids never become label values.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseMetrics, samplesOf, valueOf, type Sample } from '../../test/support/prometheus-text.ts';
import { claimAndStart, queueRun, setupWorkspace, startInProcessServer, type InProcessServer } from './in-process-server.test-support.ts';

/** Any resource id (`run-` and 16 characters, src/server/ids.ts). */
const resourceId = /\b(org|at|apool|agent|ws|var|cv|run|job|sv|lease|ot)-[A-Za-z0-9]{16}\b/;

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(() => server.close());

async function scrape(): Promise<Sample[]> {
  const response = await server.request('GET', '/metrics', { authorization: '' });
  assert.equal(response.status, 200, response.text);
  return parseMetrics(response.text);
}

async function poolOf(workspaceId: string): Promise<string> {
  const response = await server.request('GET', `/api/v2/workspaces/${workspaceId}`);
  return response.json.data.relationships['agent-pool'].data.id as string;
}

test('the gauges count jobs by state, queued jobs per pool and agents by status, zeros included', async () => {
  const idle = await setupWorkspace(server);
  const busy = await setupWorkspace(server);
  await queueRun(server, idle.workspaceId);
  const runId = await queueRun(server, busy.workspaceId);
  await claimAndStart(server, busy.session);
  const idlePool = await poolOf(idle.workspaceId);
  const busyPool = await poolOf(busy.workspaceId);

  const samples = await scrape();
  assert.equal(valueOf(samples, 'outpost_jobs', { state: 'queued' }), 1);
  assert.equal(valueOf(samples, 'outpost_jobs', { state: 'running' }), 1);
  assert.equal(valueOf(samples, 'outpost_jobs', { state: 'lost' }), 0, 'every job state is listed');
  assert.equal(valueOf(samples, 'outpost_queue_depth', { pool: idlePool }), 1);
  assert.equal(valueOf(samples, 'outpost_queue_depth', { pool: busyPool }), 0, 'a pool with nothing queued reads 0');
  // A fake agent never heartbeats: it stays `idle` as registered.
  assert.equal(valueOf(samples, 'outpost_agents', { pool: idlePool, status: 'idle' }), 1);
  assert.equal(valueOf(samples, 'outpost_agents', { pool: idlePool, status: 'offline' }), 0);
  assert.equal(samplesOf(samples, 'outpost_agents', { pool: busyPool }).length, 5, 'one sample per agent status');
  assert.ok(!samples.some((sample) => Object.values(sample.labels).includes(runId)));
});

test('requests are labelled by route pattern; unmatched URLs share one label', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId);
  assert.equal((await server.request('GET', `/api/v2/runs/${runId}`)).status, 200);
  assert.equal((await server.request('GET', '/api/v2/runs/run-doesnotexist')).status, 404);
  assert.equal((await server.request('GET', `/no/such/path/${runId}`)).status, 404);

  const samples = await scrape();
  const count = (labels: Record<string, string>) => valueOf(samples, 'outpost_http_request_duration_seconds_count', labels);
  assert.ok(count({ method: 'GET', route: '/api/v2/runs/:id', status_code: '200' })! >= 1);
  assert.ok(count({ method: 'GET', route: '/api/v2/runs/:id', status_code: '404' })! >= 1);
  assert.ok(count({ method: 'GET', route: 'unmatched', status_code: '404' })! >= 1);
  const routes = new Set(samplesOf(samples, 'outpost_http_request_duration_seconds_count').map((sample) => sample.labels.route!));
  for (const route of routes) assert.ok(route === 'unmatched' || route.startsWith('/'), route);
  assert.ok(![...routes].some((route) => resourceId.test(route)), `an id reached a route label: ${[...routes].join(' ')}`);
});

test('process metrics are included', async () => {
  const samples = await scrape();
  assert.ok(valueOf(samples, 'process_resident_memory_bytes')! > 0);
  assert.ok(samplesOf(samples, 'nodejs_eventloop_lag_seconds').length > 0);
});

test('OUTPOST_METRICS_ENABLED=false: /metrics answers 404, the API and /healthz are unchanged', async (t) => {
  const disabled = await startInProcessServer({ OUTPOST_METRICS_ENABLED: 'false' });
  t.after(() => disabled.close());
  assert.equal((await disabled.request('GET', '/metrics')).status, 404);
  assert.equal((await disabled.request('GET', '/healthz')).status, 200);
});
