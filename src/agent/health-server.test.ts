// The agent's health listener over real HTTP: readiness follows the agent's
// lifecycle, and the metrics the agent records come out as Prometheus text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseMetrics, valueOf } from '../../test/support/prometheus-text.ts';
import type { AgentLifecycle } from './agent.ts';
import { AgentMetrics } from './agent-metrics.ts';
import { readiness, startHealthServer } from './health-server.ts';

test('readiness: only a registered agent that takes work is ready; the others say why not', () => {
  assert.deepEqual(readiness('ready'), { code: 200, body: { status: 'ready' } });
  for (const status of ['starting', 'draining', 'stopped'] as const) {
    const answer = readiness(status);
    assert.equal(answer.code, 503);
    assert.equal(answer.body.status, status);
    assert.ok(answer.body.reason && answer.body.reason.length > 10, status);
  }
});

test('/healthz, /readyz and /metrics over HTTP', async (t) => {
  let status: AgentLifecycle = 'starting';
  const metrics = new AgentMetrics();
  const server = await startHealthServer({ host: '127.0.0.1', port: 0, status: () => status, metrics, logger: pino({ level: 'silent' }) });
  t.after(() => server.close());

  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  const starting = await fetch(`${server.url}/readyz`);
  assert.equal(starting.status, 503);
  assert.equal(((await starting.json()) as { status: string }).status, 'starting');
  status = 'ready';
  assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
  status = 'draining';
  const draining = await fetch(`${server.url}/readyz`);
  assert.equal(draining.status, 503);
  assert.match(((await draining.json()) as { reason: string }).reason, /stopping/);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'a draining agent is still alive');

  metrics.jobsClaimed(2, 0.02);
  metrics.jobStarted();
  metrics.jobStarted();
  metrics.jobFinished('succeeded');
  metrics.heartbeatFailed();
  metrics.logBytesShipped(1234);
  metrics.logBytesShipped(0);
  metrics.providerServed('download');
  metrics.providerServed('hit');
  metrics.providerServed('hit');
  const response = await fetch(`${server.url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  const samples = parseMetrics(await response.text());
  assert.equal(valueOf(samples, 'outpost_agent_jobs_running'), 1);
  assert.equal(valueOf(samples, 'outpost_agent_jobs_finished_total', { result: 'succeeded' }), 1);
  assert.equal(valueOf(samples, 'outpost_agent_jobs_finished_total', { result: 'failed' }), 0, 'every result is listed from the start');
  assert.equal(valueOf(samples, 'outpost_agent_claim_latency_seconds_count'), 2);
  assert.equal(valueOf(samples, 'outpost_agent_claim_latency_seconds_bucket', { le: '0.025' }), 2);
  assert.equal(valueOf(samples, 'outpost_agent_heartbeat_failures_total'), 1);
  assert.equal(valueOf(samples, 'outpost_agent_log_bytes_total'), 1234);
  assert.equal(valueOf(samples, 'outpost_agent_provider_cache_requests_total', { result: 'hit' }), 2);
  assert.equal(valueOf(samples, 'outpost_agent_provider_cache_requests_total', { result: 'download' }), 1);
  assert.ok(valueOf(samples, 'process_resident_memory_bytes')! > 0);
});

test('two agents in one process keep their own counts', async () => {
  const one = new AgentMetrics();
  const other = new AgentMetrics();
  one.heartbeatFailed();
  assert.equal(valueOf(parseMetrics(await one.registry.metrics()), 'outpost_agent_heartbeat_failures_total'), 1);
  assert.equal(valueOf(parseMetrics(await other.registry.metrics()), 'outpost_agent_heartbeat_failures_total'), 0);
});

test('a port in use fails start-up with the address in the error', async (t) => {
  const logger = pino({ level: 'silent' });
  const first = await startHealthServer({ host: '127.0.0.1', port: 0, status: () => 'ready', metrics: new AgentMetrics(), logger });
  t.after(() => first.close());
  const port = Number(new URL(first.url).port);
  await assert.rejects(startHealthServer({ host: '127.0.0.1', port, status: () => 'ready', metrics: new AgentMetrics(), logger }), /EADDRINUSE/);
});
