// `outpost launcher` with the real Docker Engine, as a serverless pool's
// receiver on this host: a queued run is delivered to it, it starts one
// agent-runner container per job (plan, then apply), each runs its job with
// the real OpenTofu and is gone when it ends (scale to zero). Deliveries it
// cannot trust are refused with a code; a full launcher answers 503 so the
// control plane retries; a repeated delivery starts nothing twice.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { PoolWebhook, WebhookDelivery } from '../../src/protocol/api-resources.ts';
import { signatureHeader } from '../../src/protocol/webhook-signature.ts';
import { apiCall, createPool, createRun, createWorkspace, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { startContainerReachableServer } from '../support/container-reachable-server.ts';
import { docker, dockerCli, dockerUnavailable, removeContainersAfter } from '../support/docker-cluster.ts';
import { quickConfig } from '../support/job-control.ts';
import { engineForContainers, startLauncher } from '../support/launcher.ts';
import { waitForRunStatus, waitUntil } from '../support/waits.ts';

const agentRunner = 'outpost/agent-runner:latest';
const unavailable = dockerUnavailable([agentRunner]);
const managed = 'app.kubernetes.io/managed-by=outpost-launcher';

function signed(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  return { 'content-type': 'application/json', 'outpost-timestamp': String(timestamp), 'outpost-signature': signatureHeader([secret], timestamp, body) };
}

describe('outpost launcher with the Docker Engine', { skip: unavailable ?? false }, () => {
  test('queue a run → webhook → one agent container per job → applied → the containers are gone', async (t) => {
    const { server } = await startContainerReachableServer(t, { OUTPOST_WEBHOOK_INTERVAL: '200ms' });
    const pool = await createPool(server);
    removeContainersAfter(t, `outpost.dev/pool=${pool.id}`);
    const workspace = await createWorkspace(server, { poolId: pool.id });
    // Set first with a placeholder URL: the launcher needs the secret, the webhook the launcher's address.
    const created = await apiCall<{ data: PoolWebhook }>(server, 'PUT', `/api/v2/agent-pools/${pool.id}/webhook`, { data: { type: 'pool-webhooks', attributes: { url: 'http://127.0.0.1:9/', enabled: false } } }, 200);
    const secret = created.data.attributes['signing-secret']!;
    const tofu = await engineForContainers(t);
    const launcher = await startLauncher(t, {
      OUTPOST_LAUNCHER_SIGNING_SECRET: secret,
      OUTPOST_AGENT_TOKEN: pool.token,
      OUTPOST_LAUNCHER_IMAGE: agentRunner,
      OUTPOST_LAUNCHER_DOCKER_VOLUMES: `${tofu}:${tofu}:ro`,
      OUTPOST_LAUNCHER_AGENT_ENV: JSON.stringify({ OUTPOST_AGENT_ENGINE_PATH: tofu }),
      OUTPOST_LAUNCHER_MEMORY: '1g',
      OUTPOST_LAUNCHER_CPUS: '1',
    });
    await apiCall(server, 'PUT', `/api/v2/agent-pools/${pool.id}/webhook`, { data: { type: 'pool-webhooks', attributes: { url: `${launcher.url}/webhook`, enabled: true } } }, 200);
    const ping = await apiCall<{ data: WebhookDelivery }>(server, 'POST', `/api/v2/agent-pools/${pool.id}/webhook/actions/test`, undefined, 200);
    assert.equal(ping.data.attributes.status, 'delivered', JSON.stringify(ping.data.attributes));

    const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('launched')));
    const describe = async () => `--- launcher\n${await launcher.log()}\n--- server\n${server.output()}\n--- containers\n${await docker(['ps', '-a', '--filter', `label=outpost.dev/pool=${pool.id}`])}`;
    await waitForRunStatus(server, run.id, ['applied'], 180_000).catch(async (error: Error) => assert.fail(`${error.message}\n${await describe()}`));
    assert.match(await readLog(server, relatedId(run, 'apply')), /Apply complete!/);

    const deliveries = (await apiCall<{ data: WebhookDelivery[] }>(server, 'GET', `/api/v2/agent-pools/${pool.id}/webhook-deliveries`, undefined, 200)).data;
    const jobs = deliveries.filter((d) => d.attributes.event === 'job.queued');
    assert.equal(jobs.length, 2, JSON.stringify(deliveries));
    for (const delivery of jobs) {
      assert.equal(delivery.attributes['response-status'], 202, JSON.stringify(delivery.attributes));
      const container = (JSON.parse(delivery.attributes['response-excerpt'] ?? '{}') as { agent?: string }).agent;
      assert.ok(container, JSON.stringify(delivery.attributes));
      // Scale to zero: each container removed itself when its agent exited.
      await waitUntil(`container ${container} to be gone`, async () => ((await dockerCli(['inspect', container])).code !== 0 ? true : undefined), describe, 60_000);
    }
    assert.equal((await docker(['ps', '-aq', '--filter', `label=outpost.dev/pool=${pool.id}`])).trim(), '');
    assert.match(await launcher.log(), /"msg":"agent started \(docker\)"/);
    assert.ok(!(await launcher.log()).includes(pool.token), 'the launcher never logs the pool token');
  });

  test('refuses unsigned, forged, stale, oversized and malformed deliveries with a code; answers 503 at capacity; a repeat starts nothing', async (t) => {
    const secret = `opw_${randomBytes(20).toString('hex')}`;
    const unique = randomBytes(4).toString('hex');
    removeContainersAfter(t, `outpost.dev/delivery=whd-launcher-${unique}`);
    removeContainersAfter(t, `outpost-test=${unique}`);
    const launcher = await startLauncher(t, {
      OUTPOST_LAUNCHER_SIGNING_SECRET: secret,
      OUTPOST_AGENT_TOKEN: 'opp_unused',
      OUTPOST_LAUNCHER_IMAGE: agentRunner,
      OUTPOST_LAUNCHER_MAX_AGENTS: '1',
    });
    const post = (body: string, headers: Record<string, string>) => fetch(`${launcher.url}/webhook`, { method: 'POST', body, headers });
    const expectError = async (response: Response, status: number, code: string, message?: RegExp) => {
      const text = await response.text();
      assert.equal(response.status, status, text);
      assert.equal((JSON.parse(text) as { errors: { code: string }[] }).errors[0]!.code, code, text);
      if (message) assert.match(text, message);
    };
    const payload = (id: string) => JSON.stringify({ event: 'job.queued', delivery_id: id, created_at: new Date().toISOString(), organization: { name: 'default' }, pool: { id: 'apool-test', name: 't' }, job: { id: 'job-launcher-test', phase: 'plan', attempt: 1 } });
    const body = payload(`whd-launcher-${unique}`);

    await expectError(await post(body, { 'content-type': 'application/json' }), 401, 'signature_invalid', /was not sent by an Outpost control plane/);
    await expectError(await post(body, signed('opw_wrong', body)), 401, 'signature_invalid', /does not match/);
    await expectError(await post(body, signed(secret, body, Math.floor(Date.now() / 1000) - 3600)), 401, 'signature_invalid', /replayed request/);
    await expectError(await post(body.replace('job-launcher-test', 'job-other'), signed(secret, body)), 401, 'signature_invalid');
    await expectError(await post('{not json', signed(secret, '{not json')), 400, 'invalid_request');
    await expectError(await post('x'.repeat(200_000), signed(secret, 'x')), 413, 'payload_too_large');
    await expectError(await post(body, { ...signed(secret, body), 'content-type': 'text/plain' }), 415, 'unsupported_media_type');

    // At capacity: one container of the launcher's kind already runs (the cap is 1).
    await docker(['run', '-d', '--label', managed, '--label', `outpost-test=${unique}`, '--entrypoint', 'sleep', agentRunner, '300']);
    await expectError(await post(body, signed(secret, body)), 503, 'launcher_at_capacity', /OUTPOST_LAUNCHER_MAX_AGENTS=1/);
    await docker(['rm', '-f', ...(await docker(['ps', '-q', '--filter', `label=outpost-test=${unique}`])).trim().split('\n')]);

    // Accepted once; the same delivery again (a retry whose first answer was lost) starts nothing new.
    const first = await post(body, signed(secret, body));
    assert.equal(first.status, 202, await first.clone().text());
    const again = await post(body, signed(secret, body));
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { duplicate: boolean }).duplicate, true);
    const started = (await docker(['ps', '-aq', '--filter', `label=outpost.dev/delivery=whd-launcher-${unique}`])).trim().split('\n').filter(Boolean);
    assert.ok(started.length <= 1, `one container at most for the delivery: ${started.join(', ')}`);
    assert.match(await launcher.log(), /delivery refused: Outpost-Signature does not match/);
  });
});
