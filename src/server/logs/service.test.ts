// A phase's log stops growing at OUTPOST_MAX_LOG_MB.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { agentPaths } from '../../protocol/agent-api.ts';
import { claimAndStart, queueRun, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer({ OUTPOST_MAX_LOG_MB: '1' });
});
after(async () => {
  await server.close();
});

test('appends beyond the log size limit are refused with log_too_large', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId);
  const job = await claimAndStart(server, session);
  const append = (offset: number, bytes: number) =>
    server.request('PUT', `${agentPaths.jobLogs(job.job_id)}?lease_id=${job.lease_id}&offset=${offset}`, { token: session, body: Buffer.alloc(bytes, 0x61) });

  const limit = 1024 * 1024;
  const first = await append(0, limit - 10);
  assert.equal(first.status, 200, first.text);
  const full = await append(limit - 10, 10);
  assert.deepEqual(full.json, { size: limit }, 'up to the limit is fine');
  const over = await append(limit, 1);
  assert.equal(over.status, 413, over.text);
  assert.equal(over.json.errors[0].code, 'log_too_large');
  assert.deepEqual(over.json.errors[0].meta, { size: limit, limit });
  // A chunk that straddles the limit is refused whole; a retry of stored bytes is still acknowledged.
  assert.equal((await append(limit - 10, 20)).status, 413);
  assert.deepEqual((await append(limit - 10, 10)).json, { size: limit });

  const log = await server.request('GET', `/api/v2/plans/${runId.replace('run-', 'plan-')}/logs`);
  assert.equal(log.body.length, limit);
});
