// A poll whose answer never reaches its agent (the connection is cut after
// the server claimed a job for it and wrote the answer), against the real
// server, a real agent and OpenTofu, on SQLite and PostgreSQL
// (docs/protocol.md, "Claiming work"). The server cannot tell a delivered
// answer from a lost one, so the job is leased to an agent that never saw
// it. The agent's next poll lists the jobs it holds; the server queues again
// at once every job it claimed for that agent earlier that the poll does not
// list, and another agent runs it: well before the lease would have lapsed,
// and exactly once.
//
// The agent that loses the answer is a raw HTTP client (it registers, opens
// a poll on a socket of its own and destroys the socket as the answer's
// first bytes arrive, then polls again as an agent does after a failed
// poll). The lease is long (2 min), so nothing but the hand-back can free
// the job within the bounds asserted.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { databaseBackends } from '../support/postgres.ts';
import { createRun, getPhase, listAgents, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { assertNoJobLost } from '../support/log-checks.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import { quickConfig } from '../support/job-control.ts';
import { logEntries } from '../support/log-entries.ts';

const leaseTimeoutMs = 120_000;
/** Well inside the lease: the job must be claimed again this soon after the agent's next poll. */
const promptlyMs = 15_000;

interface Registered {
  agent_id: string;
  session_token: string;
}

async function register(cluster: Cluster): Promise<Registered> {
  const response = await fetch(`${cluster.server.url}/api/agent/v1/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cluster.pool.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'loses-answers', version: '0.1.0', driver: 'local', concurrency: 1 }),
  });
  assert.equal(response.status, 201, await response.clone().text());
  return (await response.json()) as Registered;
}

/**
 * Opens a poll for one job on a socket of its own and destroys the socket
 * as soon as the answer starts to arrive: the server answered, the agent
 * read nothing. Resolves with what had arrived.
 */
function pollAndHangUp(serverUrl: string, session: string): Promise<string> {
  const url = new URL(serverUrl);
  const body = JSON.stringify({ free_slots: 1, running: [], wait_ms: 60_000 });
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(
        `POST /api/agent/v1/poll HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${session}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    socket.once('data', (chunk) => {
      socket.destroy();
      resolve(chunk.toString('utf8'));
    });
    socket.once('error', reject);
  });
}

/** A later poll of the same agent, as it polls after a failed one: it holds no job. */
async function pollHoldingNothing(serverUrl: string, session: string): Promise<void> {
  const response = await fetch(`${serverUrl}/api/agent/v1/poll`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
    body: JSON.stringify({ free_slots: 0, running: [], wait_ms: 0 }),
  });
  assert.equal(response.status, 200, await response.text());
}

for (const backend of databaseBackends()) {
  test(`a job whose poll answer never reached its agent is run by another agent at once, exactly once (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { agents: 0, serverEnv: { OUTPOST_LEASE_TIMEOUT: `${leaseTimeoutMs}ms` } });
    const { server, pool, workspace } = cluster;
    const lost = await register(cluster);
    const hungUp = pollAndHangUp(server.url, lost.session_token);
    const cv = await uploadConfiguration(server, workspace.id, quickConfig('once'));
    const run = await createRun(server, workspace.id, cv);
    const answer = await hungUp;
    assert.match(answer, /^HTTP\/1\.1 200/, `the poll was answered: ${answer}`);

    const claimedFor = (agentId: string) => logEntries(server.output()).filter((entry) => entry.msg === 'jobs claimed' && entry.agent === agentId);
    const [first] = await waitUntil(
      'the server to log the claim for the agent that hung up',
      async () => (claimedFor(lost.agent_id).length > 0 ? claimedFor(lost.agent_id) : undefined),
      () => cluster.diagnostics(run.id),
      10_000,
    );
    const jobId = (first!.jobs as string[])[0]!;
    const planId = relatedId(run, 'plan');
    // The job is the lost agent's: leased (the plan shows running), the run still plan_queued.
    assert.equal((await getPhase(server, planId)).attributes.status, 'running');

    // Another agent joins; the job is not its to take while it is leased.
    const other = await cluster.startAgent();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const stranded = await listAgents(server, pool.id);
    assert.deepEqual(
      stranded.map((agent) => [agent.attributes.name, agent.attributes['running-jobs']]).sort(),
      [['loses-answers', 1], [other.name, 0]].sort(),
      await cluster.diagnostics(run.id),
    );

    // The lost agent polls again, holding nothing: the job goes back, the other agent takes it.
    const handedBackAt = Date.now();
    await pollHoldingNothing(server.url, lost.session_token);
    const applied = await cluster.waitForRun(run.id, ['applied']);
    const why = await cluster.diagnostics(run.id);

    const entries = logEntries(server.output());
    const returned = entries.filter((entry) => entry.msg === 'claim returned to the queue: its agent never received it');
    assert.deepEqual(returned.map((entry) => [entry.job, entry.agent]), [[jobId, lost.agent_id]], why);
    const planClaims = entries.filter((entry) => entry.msg === 'jobs claimed' && (entry.jobs as string[]).includes(jobId));
    assert.equal(planClaims.length, 2, `claimed for the lost agent, then once more\n${why}`);
    const [, again] = planClaims as [unknown, { agent: string; time: number }];
    assert.notEqual(again.agent, lost.agent_id, why);
    assert.ok(again.time - handedBackAt < promptlyMs, `claimed again ${again.time - handedBackAt} ms after the agent's next poll (lease ${leaseTimeoutMs} ms)\n${why}`);

    // Run exactly once: one start, one plan, one apply, one resource.
    const started = logEntries(other.output()).filter((entry) => entry.msg === 'job claimed' && entry.job === jobId);
    assert.equal(started.length, 1, why);
    assert.equal((await readLog(server, planId)).match(/^Outpost agent [^:]+: plan job /gm)?.length, 1, `one agent ran the plan\n${why}`);
    assert.deepEqual([applied.attributes['resource-additions'], applied.attributes['resource-changes']], [1, 0], why);
    assertNoJobLost(server);
  });
}
