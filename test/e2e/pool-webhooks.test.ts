// Serverless pools against a real HTTP receiver: a queued job that no agent
// can take is delivered once, signed, with the pool's custom headers; the
// receiver starts a single-run agent for exactly that job (here the test
// does, as a launcher would) and the run is applied with the real OpenTofu.
// Failed deliveries are retried with the same idempotency key while the job
// waits; a job nobody claims fails naming the webhook's last answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolWebhook, WebhookDelivery } from '../../src/protocol/api-resources.ts';
import { startAgent, type ServerHandle } from '../support/cluster.ts';
import { apiCall, createRun, describeResponse, getRun, uploadConfiguration } from '../support/api-calls.ts';
import { runCli } from '../support/cli-runner.ts';
import { exitCodeOf, quickConfig } from '../support/job-control.ts';
import { databaseBackends } from '../support/postgres.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

const fastWebhooks = { OUTPOST_WEBHOOK_INTERVAL: '200ms', OUTPOST_WEBHOOK_TIMEOUT: '1s' };

async function setWebhook(server: ServerHandle, poolId: string, attributes: Record<string, unknown>): Promise<PoolWebhook> {
  return (await apiCall<{ data: PoolWebhook }>(server, 'PUT', `/api/v2/agent-pools/${poolId}/webhook`, { data: { type: 'pool-webhooks', attributes } }, 200)).data;
}

async function deliveries(server: ServerHandle, poolId: string): Promise<WebhookDelivery[]> {
  return (await apiCall<{ data: WebhookDelivery[] }>(server, 'GET', `/api/v2/agent-pools/${poolId}/webhook-deliveries`, undefined, 200)).data;
}

/** Starts a single-run agent for the delivery's job, as a launcher would, and waits for it to exit. */
async function runAgentFor(server: ServerHandle, token: string, receiver: WebhookReceiver, index: number, t: Parameters<typeof startAgent>[1]['t']): Promise<number | null> {
  const jobId = receiver.received[index]!.payload.job!.id;
  const agent = await startAgent(server, { token, t, env: { OUTPOST_AGENT_SINGLE: 'true', OUTPOST_AGENT_JOB_ID: jobId } });
  return exitCodeOf(agent);
}

for (const backend of databaseBackends()) {
  test(`a queued run calls the pool's webhook once per job, signed; single agents started for those jobs apply it (${backend})`, async (t) => {
    const receiver = await startWebhookReceiver(t);
    const cluster = await setupCluster(t, backend, { agents: 0, serverEnv: fastWebhooks });
    const { server, pool, workspace } = cluster;
    const set = await setWebhook(server, pool.id, { url: receiver.url, headers: { 'X-Api-Key': 'header-secret-value' } });
    const secret = set.attributes['signing-secret']!;
    assert.match(secret, /^opw_/);
    // Shown once: reading the webhook shows neither the secret nor the header's value.
    const shown = JSON.stringify(await apiCall(server, 'GET', `/api/v2/agent-pools/${pool.id}/webhook`, undefined, 200));
    assert.ok(!shown.includes(secret) && !shown.includes('header-secret-value'), shown);
    assert.match(shown, /"headers":\["X-Api-Key"\]/);

    const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('serverless')));
    const [plan] = await receiver.waitFor(1);
    assert.equal(plan!.headers['x-api-key'], 'header-secret-value');
    assert.equal(plan!.headers['outpost-event'], 'job.queued');
    assert.equal(plan!.headers['idempotency-key'], plan!.payload.delivery_id);
    assert.ok(receiver.verifies(plan!, [secret]), 'the signature verifies with the pool\'s secret');
    assert.ok(!receiver.verifies(plan!, ['opw_another']), 'and not with another');
    assert.deepEqual({ run: plan!.payload.run?.id, workspace: plan!.payload.workspace?.id, phase: plan!.payload.job?.phase, pool: plan!.payload.pool.id }, {
      run: run.id,
      workspace: workspace.id,
      phase: 'plan',
      pool: pool.id,
    });
    assert.ok(!plan!.body.includes(pool.token) && !plan!.body.includes(secret), 'the payload carries no secret');

    assert.equal(await runAgentFor(server, pool.token, receiver, 0, t), 0);
    // The apply is a job of its own: the plan's single agent is gone, so it gets its own delivery.
    const [, apply] = await receiver.waitFor(2);
    assert.equal(apply!.payload.job?.phase, 'apply');
    assert.equal(await runAgentFor(server, pool.token, receiver, 1, t), 0);
    await cluster.waitForRun(run.id, ['applied']);

    // One delivery per waiting job, however many turns the dispatcher took meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(receiver.received.length, 2, JSON.stringify(receiver.received.map((r) => r.payload)));
    const records = await deliveries(server, pool.id);
    assert.deepEqual(records.map((d) => [d.attributes.status, d.attributes.attempts, d.attributes['response-status']]), [['delivered', 1, 202], ['delivered', 1, 202]]);
  });
}

test('a failing receiver is retried with the same idempotency key until it accepts; one that hangs or is down is recorded', async (t) => {
  const receiver = await startWebhookReceiver(t);
  const cluster = await setupCluster(t, 'sqlite', { agents: 0, serverEnv: fastWebhooks });
  const { server, pool, workspace } = cluster;
  await setWebhook(server, pool.id, { url: receiver.url });
  const answers = ['hang', { status: 500, body: 'gateway exploded' }] as const;
  receiver.answer = () => answers[receiver.received.length - 1] ?? { status: 202 };
  await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig()));
  const attempts = await receiver.waitFor(3, 60_000);
  assert.deepEqual(attempts.map((a) => a.headers['outpost-delivery-attempt']), ['1', '2', '3']);
  assert.equal(new Set(attempts.map((a) => a.headers['idempotency-key'])).size, 1, 'every attempt carries the same key');
  assert.equal(new Set(attempts.map((a) => a.payload.delivery_id)).size, 1);
  // Backoff: the retries are seconds apart, not immediate.
  assert.ok(attempts[2]!.receivedAt - attempts[1]!.receivedAt >= 2_000, 'the second retry waited');
  const [record] = await waitUntil('the delivery recorded as delivered', async () => {
    const list = await deliveries(server, pool.id);
    return list[0]?.attributes.status === 'delivered' ? list : undefined;
  }, () => cluster.diagnostics());
  assert.equal(record!.attributes.attempts, 3);

  // A test delivery to a receiver that is down: recorded with why.
  await setWebhook(server, pool.id, { url: 'http://127.0.0.1:9/nothing-listens' });
  const ping = (await apiCall<{ data: WebhookDelivery }>(server, 'POST', `/api/v2/agent-pools/${pool.id}/webhook/actions/test`, undefined, 200)).data;
  assert.equal(ping.attributes.status, 'failed');
  assert.equal(ping.attributes.event, 'ping');
  assert.match(ping.attributes.error ?? '', /connection refused/);
});

test('a job no agent claims errors with job_unclaimed naming the last answer (secrets scrubbed); the per-minute cap holds back deliveries', async (t) => {
  const receiver = await startWebhookReceiver(t);
  // A receiver that echoes what it was sent: the record and the run's error must not keep the header's value.
  receiver.answer = (delivery) => ({ status: 503, body: `no capacity in us-east-1 (key ${delivery.headers['x-api-key']})` });
  const cluster = await setupCluster(t, 'sqlite', { agents: 0, serverEnv: fastWebhooks });
  const { server, pool, workspace } = cluster;
  await setWebhook(server, pool.id, { url: receiver.url, headers: { 'X-Api-Key': 'echoed-secret-value' }, 'claim-timeout-seconds': 5, 'deliveries-per-minute': 1 });
  const second = await cluster.createWorkspace();
  const first = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig()));
  await receiver.waitFor(1);
  const other = await createRun(server, second.id, await uploadConfiguration(server, second.id, quickConfig()));

  const errored = await cluster.waitForRun(first.id, ['errored'], 60_000);
  assert.equal(errored.attributes['error-code'], 'job_unclaimed');
  const message = errored.attributes['error-message'] ?? '';
  assert.match(message, /within 5s of its webhook delivery .*did not accept delivery whd-\S+ after \d+ attempts?; the last answer: HTTP 503 "no capacity in us-east-1 \(key \[redacted\]\)"/);
  assert.doesNotMatch(message, /query-secret|echoed-secret-value/, 'neither the URL\'s query nor an echoed header value is shown');
  const records = JSON.stringify(await deliveries(server, pool.id));
  assert.ok(!records.includes('echoed-secret-value'), records);
  // The cap (1 a minute) holds the other run's job back: no delivery yet, so it waits rather than failing.
  const waiting = await getRun(server, other.id);
  assert.equal(waiting.attributes.status, 'plan_queued', JSON.stringify(waiting.attributes));
  assert.equal(new Set(receiver.received.map((r) => r.payload.job?.id)).size, 1, 'only one job was delivered within the minute');
});

test('a connected agent with a free slot takes the job: no delivery; the signing secret rotates with overlap', async (t) => {
  const receiver = await startWebhookReceiver(t);
  const cluster = await setupCluster(t, 'sqlite', { agents: 1, serverEnv: fastWebhooks });
  const { server, pool, workspace } = cluster;
  const first = (await setWebhook(server, pool.id, { url: receiver.url })).attributes['signing-secret']!;
  const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig()));
  await cluster.waitForRun(run.id, ['applied']);
  assert.equal(receiver.received.length, 0, 'the free agent took both jobs');

  const rotated = (await apiCall<{ data: PoolWebhook }>(server, 'POST', `/api/v2/agent-pools/${pool.id}/webhook/actions/rotate-secret`, { data: { attributes: { 'overlap-seconds': 3600 } } }, 200)).data;
  const second = rotated.attributes['signing-secret']!;
  assert.notEqual(second, first);
  assert.ok(rotated.attributes['previous-secret-expires-at']);
  await apiCall(server, 'POST', `/api/v2/agent-pools/${pool.id}/webhook/actions/test`, undefined, 200);
  const [ping] = await receiver.waitFor(1);
  assert.equal(ping!.payload.event, 'ping');
  assert.ok(receiver.verifies(ping!, [first]) && receiver.verifies(ping!, [second]), 'both secrets verify during the overlap');

  await apiCall(server, 'POST', `/api/v2/agent-pools/${pool.id}/webhook/actions/rotate-secret`, { data: { attributes: { 'overlap-seconds': 0 } } }, 200);
  await apiCall(server, 'POST', `/api/v2/agent-pools/${pool.id}/webhook/actions/test`, undefined, 200);
  const [, after] = await receiver.waitFor(2);
  assert.ok(!receiver.verifies(after!, [first]) && !receiver.verifies(after!, [second]), 'no overlap: the old secrets no longer verify');
});

test('bad webhook input is refused with a code, and nothing is stored', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, pool } = cluster;
  const put = (attributes: unknown) => server.api('PUT', `/api/v2/agent-pools/${pool.id}/webhook`, { data: { type: 'pool-webhooks', attributes } });
  const cases: [unknown, number, RegExp][] = [
    [{}, 422, /a new webhook needs a url/],
    [{ url: 'ftp://example.com/hook' }, 422, /expected an http:\/\/ or https:\/\/ URL/],
    [{ url: 'http://169.254.169.254/latest/meta-data/' }, 422, /link-local address \(cloud instance metadata\)/],
    [{ url: 'http://example.com', headers: { 'Outpost-Signature': 'forged' } }, 422, /set by Outpost itself/],
    [{ url: 'http://example.com', headers: { 'Bad Header': 'x' } }, 422, /header name/],
    [{ url: 'http://example.com', headers: { 'X-Key': 'a\r\nInjected: 1' } }, 422, /one line/],
    [{ url: 'http://example.com', 'claim-timeout-seconds': 1 }, 422, /claim-timeout-seconds/],
  ];
  for (const [attributes, status, message] of cases) {
    const response = await put(attributes);
    assert.equal(response.status, status, describeResponse(response));
    assert.match(JSON.stringify(response.body), message);
  }
  const none = await server.api('GET', `/api/v2/agent-pools/${pool.id}/webhook`);
  assert.equal(none.status, 404, describeResponse(none));
  assert.match(JSON.stringify(none.body), /has no webhook/);
  const unknown = await server.api('PUT', '/api/v2/agent-pools/apool-doesnotexist0000/webhook', { data: { type: 'pool-webhooks', attributes: { url: 'http://example.com' } } });
  assert.equal(unknown.status, 404);
  const anonymous = await fetch(`${server.url}/api/v2/agent-pools/${pool.id}/webhook-deliveries`);
  assert.equal(anonymous.status, 401);
});

test('outpost pool webhook and outpost pool deliveries, as a user runs them', async (t) => {
  const receiver = await startWebhookReceiver(t);
  const cluster = await setupCluster(t, 'sqlite', { agents: 0, serverEnv: fastWebhooks });
  const { server, pool } = cluster;
  const cli = (...args: string[]) => runCli(t, server, args);

  const set = await cli('pool', 'webhook', 'set', pool.id, receiver.url, '--header', 'X-Api-Key=cli-header-value');
  assert.equal(set.code, 0, set.stderr);
  const secret = set.stdout.trim();
  assert.match(secret, /^opw_\w+$/, 'stdout is the signing secret alone, for $(…)');
  assert.match(set.stderr, /WARNING: copy this signing secret now/);

  const shown = await cli('pool', 'webhook', 'show', pool.id);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /X-Api-Key/);
  assert.ok(!shown.stdout.includes('cli-header-value') && !shown.stdout.includes(secret), shown.stdout);

  const ping = await cli('pool', 'webhook', 'test', pool.id);
  assert.equal(ping.code, 0, ping.stderr + ping.stdout);
  assert.ok(receiver.verifies((await receiver.waitFor(1))[0]!, [secret]));
  assert.match(ping.stdout, /delivered/);

  const listed = await cli('pool', 'deliveries', pool.id);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /whd-\S+\s+ping\s+-\s+delivered\s+1\s+HTTP 202/);

  const rotated = await cli('pool', 'webhook', 'rotate-secret', pool.id, '--overlap', '0');
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout.trim(), /^opw_\w+$/);
  assert.notEqual(rotated.stdout.trim(), secret);

  // A receiver that refuses: `test` exits 1 and says what came back.
  receiver.answer = () => ({ status: 401, body: '{"error":"bad signature"}' });
  const refused = await cli('pool', 'webhook', 'test', pool.id);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stdout, /HTTP 401/);

  const badHeader = await cli('pool', 'webhook', 'set', pool.id, '--header', 'no-equals-sign');
  assert.equal(badHeader.code, 2, badHeader.stderr);
  assert.match(badHeader.stderr, /expected NAME=VALUE/);

  const removed = await cli('pool', 'webhook', 'remove', pool.id);
  assert.equal(removed.code, 0, removed.stderr);
  const gone = await cli('pool', 'webhook', 'show', pool.id);
  assert.equal(gone.code, 3, gone.stderr);
  assert.match(gone.stderr, /has no webhook/);
});
