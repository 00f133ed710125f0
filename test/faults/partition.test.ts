// What happens when an agent is cut off from the server for longer than its
// lease and then comes back (fencing: docs/reliability.md, "Leases and agent
// loss"), against the real server, agents and OpenTofu, on SQLite and
// PostgreSQL. The agent reaches the server only through a TCP
// proxy the test controls (test/support/tcp-proxy.ts); its engine does too,
// since jobs are given the agent's server URL. The cut blackholes: requests
// sent during it are held and delivered when the link is restored, so the
// server's answers to the zombie's late requests are observed directly (the
// server logs every request with its status at debug level).
//
// - apply: the lease lapses, the run errors agent_lost (an apply is never
//   re-run); the zombie's engine finishes afterwards and its state write
//   (OpenTofu first reads the stored state for its serial, and unlocks
//   after), its log chunks and its heartbeat arrive late: the state calls
//   get 401 (the job token died with the job), the chunks 409 lease_stale,
//   the heartbeat says the job is stale; no state version comes from the zombie, its
//   provisioner ran once, and the next run takes the released lock and
//   applies with one more state serial.
// - plan: the lease lapses, the plan is queued again and another agent
//   completes it; the zombie's late job-token calls (unlock, plan upload,
//   result) get 401, its log chunks and finish 404 (the job is no longer
//   its own, so the server does not even admit it exists to this agent),
//   and the run has exactly one plan result, which then applies.
//
// Short lease (4 s, heartbeats every second, a sweep every 500 ms), as in
// agent-kill.test.ts; the only timing asserted is the documented bound.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { startAgent, type AgentHandle } from '../support/cluster.ts';
import { databaseBackends } from '../support/postgres.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { jobEntries, logEntries, loggedRequests, type LogEntry, type LoggedRequest } from '../support/log-entries.ts';
import { createRun, getPhase, getRun, getWorkspace, listAgents, listStateVersions, downloadState, currentStateVersion, readLog, relatedId, runAction, uploadConfiguration } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import { HeldEndpoint, jobDirectoryPattern, killLeftoversAfter, planTimeReadConfig, quickConfig, waitForNoProcesses, waitForLog } from '../support/job-control.ts';
import { leaseTimeoutMs, shortLeaseServerEnv, sweepIntervalMs } from '../support/short-lease.ts';

const serverEnv = {
  ...shortLeaseServerEnv,
  // Every request and its status (app.ts logs them at debug): the zombie's are asserted on.
  OUTPOST_LOG_LEVEL: 'debug',
};

/** An apply whose provisioner counts its runs, then waits until `gate` exists (at most 60 s). */
function gatedApplyConfig(gate: string, counter: string): Record<string, string> {
  const wait = `i=0; while [ ! -e '${gate}' ]; do i=$((i+1)); if [ $i -gt 600 ]; then exit 1; fi; sleep 0.1; done`;
  return {
    'main.tf': [
      'resource "terraform_data" "gated" {',
      '  provisioner "local-exec" {',
      `    command = "echo ran >> '${counter}'; echo 'waiting at the gate'; ${wait}; echo 'through the gate'"`,
      '  }',
      '}',
      '',
    ].join('\n'),
  };
}

/** The requests the server answered after `offset` of its output. */
function requestsSince(cluster: Cluster, offset: number): LoggedRequest[] {
  return loggedRequests(cluster.server.output(), offset);
}

/** What only this job's holder sends: the session-token calls naming the job, and every job-token call. */
function isJobRequest(request: LoggedRequest, jobId: string): boolean {
  return request.path.startsWith(`/api/agent/v1/jobs/${jobId}/`) || request.path.startsWith('/api/agent/v1/job/');
}

/** The id of the job of `kind` the agent claimed for `runId`, from its log. */
function claimedJobId(agent: AgentHandle, runId: string, kind: 'plan' | 'apply'): string {
  const claimed = logEntries(agent.output()).find((entry) => entry.msg === 'job claimed' && entry.run === runId && entry.kind === kind);
  if (typeof claimed?.job !== 'string') assert.fail(`agent ${agent.name} never claimed the ${kind} job of run ${runId}:\n${agent.output()}`);
  return claimed.job;
}

/** The agent's log entries with this message about this job. */
function agentLogEntries(agent: AgentHandle, message: string, jobId: string): LogEntry[] {
  return jobEntries(agent.output(), message, jobId);
}

/** Starts an agent that reaches the server only through `proxy`, and waits until it is registered. */
async function startProxiedAgent(t: Parameters<typeof setupCluster>[0], cluster: Cluster, proxy: TcpProxy): Promise<AgentHandle> {
  const agent = await startAgent({ url: proxy.url }, { token: cluster.pool.token, t });
  cluster.agents.push(agent);
  await waitUntil(
    `agent ${agent.name} to register through the proxy`,
    async () => ((await listAgents(cluster.server, cluster.pool.id)).some((a) => a.attributes.name === agent.name) ? true : undefined),
    () => cluster.diagnostics(),
    30_000,
  );
  return agent;
}

/** Waits until a request whose first line matches `pattern` is held in the partition. */
async function waitForHeldRequest(proxy: TcpProxy, pattern: RegExp, describe: () => Promise<string>): Promise<void> {
  await waitUntil(
    `a request matching ${String(pattern)} to be held in the partition`,
    async () => (proxy.heldRequestLines().some((line) => pattern.test(line)) ? true : undefined),
    async () => `held: ${JSON.stringify(proxy.heldRequestLines())}\n${await describe()}`,
  );
}

/**
 * Waits until the zombie has given the job up, one way or the other: its
 * heartbeat heard the job is stale (it then stops the job and reports
 * nothing), or the job ended first and its finish was refused. Either way
 * its sandbox is gone afterwards.
 */
async function waitForZombieToLetGo(cluster: Cluster, zombie: AgentHandle, jobId: string, runId: string): Promise<void> {
  await waitUntil(
    'the zombie to give up the job',
    async () => {
      const heard = agentLogEntries(zombie, 'the server no longer recognises this job; stopping it', jobId).length > 0;
      const refused = agentLogEntries(zombie, 'could not report the job result', jobId).length > 0;
      return heard || refused ? true : undefined;
    },
    () => cluster.diagnostics(runId),
  );
  await waitForNoProcesses(jobDirectoryPattern(zombie), () => cluster.diagnostics(runId));
}

/** The zombie's late requests, each with the server's answer; fails if any about this job was accepted. */
function assertJobRequestsRefused(cluster: Cluster, since: number, jobId: string): LoggedRequest[] {
  const late = requestsSince(cluster, since).filter((request) => isJobRequest(request, jobId));
  const accepted = late.filter((request) => request.status < 400);
  assert.deepEqual(accepted, [], `the zombie's late requests about job ${jobId} must all be refused: ${JSON.stringify(late)}`);
  return late;
}

for (const backend of databaseBackends()) {
  // Proves: a partitioned agent's apply is declared lost (agent_lost, never
  // re-run) within the lease timeout + sweep interval, with the lock
  // released; when the link heals, everything the zombie sends about the
  // job is refused: its engine's state write (the job token died with the
  // job), its log chunks (lease_stale), and its heartbeat says the job is
  // stale so the agent stops it; no state version comes from the zombie,
  // the apply ran once, and the next run applies with one more serial.
  test(`partition during an apply: the run errors agent_lost; the zombie's late state write, log chunks and heartbeat are refused; nothing is applied twice (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { serverEnv, agents: 0 });
    const proxy = await TcpProxy.start(t, new URL(cluster.server.url).port);
    const zombie = await startProxiedAgent(t, cluster, proxy);
    killLeftoversAfter(t, () => jobDirectoryPattern(zombie));
    const dir = await tempDir(t);
    const gate = path.join(dir, 'gate');
    const counter = path.join(dir, 'provisioner-runs');
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, gatedApplyConfig(gate, counter));
    const run = await createRun(cluster.server, cluster.workspace.id, cv);
    await cluster.waitForRun(run.id, ['applying']);
    await waitForLog(cluster.server, relatedId(run, 'apply'), /waiting at the gate/, () => cluster.diagnostics(run.id));
    const jobId = claimedJobId(zombie, run.id, 'apply');

    const cutAt = Date.now();
    proxy.cut();
    const errored = await cluster.waitForRun(run.id, ['errored'], leaseTimeoutMs + sweepIntervalMs + 10_000);
    const elapsed = Date.now() - cutAt;
    assert.ok(elapsed <= leaseTimeoutMs + sweepIntervalMs + 3_000, `errored ${elapsed} ms after the cut, more than the lease timeout + sweep interval + 3 s`);
    assert.equal(errored.attributes['error-code'], 'agent_lost', JSON.stringify(errored.attributes));
    assert.match(String(errored.attributes['error-message']), /the agent was lost during apply \(its agent stopped reporting\); the apply is not retried automatically/);
    assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false, 'the state lock is released');
    const versionsAtLoss = await listStateVersions(cluster.server, cluster.workspace.id);

    // The zombie's apply goes on: its engine goes to save the final state
    // (reading the stored one first, for its serial), which the partition holds.
    await writeFile(gate, '');
    await waitForHeldRequest(proxy, /^\w+ \/api\/agent\/v1\/job\/state/, () => cluster.diagnostics(run.id));
    const restoredAt = cluster.server.output().length;
    proxy.restore();

    await waitForZombieToLetGo(cluster, zombie, jobId, run.id);
    const late = assertJobRequestsRefused(cluster, restoredAt, jobId);
    const stateCalls = late.filter((r) => r.path.startsWith('/api/agent/v1/job/state'));
    assert.ok(stateCalls.length > 0 && stateCalls.every((r) => r.status === 401), `the engine's state calls with the dead job token: ${JSON.stringify(late)}`);
    // The chunks it printed during the partition ("through the gate") are refused as stale.
    await waitUntil(
      'the zombie\'s log shipping to be refused as stale',
      async () => (agentLogEntries(zombie, 'log shipping stopped', jobId).some((entry) => /lease .* is no longer current/.test(String(entry.err))) ? true : undefined),
      () => cluster.diagnostics(run.id),
    );
    const logChunks = assertJobRequestsRefused(cluster, restoredAt, jobId).filter((r) => r.method === 'PUT' && r.path === `/api/agent/v1/jobs/${jobId}/logs`);
    assert.ok(logChunks.length > 0 && logChunks.every((r) => r.status === 409), JSON.stringify(logChunks));
    // A finish, if the runner got that far before hearing, is refused too (above); it is never accepted.
    assert.deepEqual(agentLogEntries(zombie, 'job finished', jobId), [], 'the server accepted no finish from the zombie');

    // Nothing was applied twice, and nothing of the zombie's reached the state.
    assert.equal((await readFile(counter, 'utf8')).trim().split('\n').length, 1, 'the provisioner ran once');
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'errored');
    assert.equal((await getPhase(cluster.server, relatedId(run, 'apply'))).attributes.status, 'errored');
    assert.deepEqual(await listStateVersions(cluster.server, cluster.workspace.id), versionsAtLoss, 'the zombie added no state version');
    const applyLog = await readLog(cluster.server, relatedId(run, 'apply'));
    assert.doesNotMatch(applyLog, /\(local-exec\): through the gate/, 'what the zombie printed after the loss is not in the run log');
    const lost = cluster.server.output().split('\n').filter((line) => line.includes('job lost its agent'));
    assert.equal(lost.length, 1, lost.join('\n'));
    assert.doesNotMatch(lost[0]!, /queued again/);

    // The lock was released: the next run (on the healed agent) applies, with exactly one more serial.
    const lossSerial = versionsAtLoss[0]?.attributes.serial ?? 0;
    const next = await createRun(cluster.server, cluster.workspace.id, await uploadConfiguration(cluster.server, cluster.workspace.id, quickConfig('after-partition')));
    const applied = await cluster.waitForRun(next.id, ['applied']);
    assert.equal(applied.attributes['resource-additions'], 1);
    const final = await currentStateVersion(cluster.server, cluster.workspace.id);
    assert.ok(final, 'the next run saved state');
    assert.equal(final.attributes.serial, lossSerial + 1, JSON.stringify(await listStateVersions(cluster.server, cluster.workspace.id)));
    assert.equal(relatedId(final, 'run'), next.id);
    assert.deepEqual((await downloadState(cluster.server, final.id)).resources.map((r) => r.name), ['quick']);
  });

  // Proves: a partitioned agent's plan is queued again once its lease
  // lapses and another agent completes it; when the link heals, the
  // zombie's late unlock, plan upload and log chunks are refused (its job
  // token was replaced when the plan was re-queued), so the run has exactly
  // one plan result, which is the one that then applies.
  test(`partition during a plan: the plan is queued again and completed by another agent; the zombie's late updates are refused; exactly one plan result (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { serverEnv, agents: 0, autoApply: false });
    const proxy = await TcpProxy.start(t, new URL(cluster.server.url).port);
    const zombie = await startProxiedAgent(t, cluster, proxy);
    killLeftoversAfter(t, () => jobDirectoryPattern(zombie));
    const endpoint = await HeldEndpoint.start(t);
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, planTimeReadConfig(endpoint.url('/plan-read')));
    const run = await createRun(cluster.server, cluster.workspace.id, cv, { autoApply: false });
    await cluster.waitForRun(run.id, ['planning']);
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), () => cluster.diagnostics(run.id));
    const jobId = claimedJobId(zombie, run.id, 'plan');

    proxy.cut();
    await cluster.waitForRun(run.id, ['plan_queued'], leaseTimeoutMs + sweepIntervalMs + 10_000);
    const readsBefore = endpoint.requests.length;
    const other = await cluster.startAgent();
    killLeftoversAfter(t, () => jobDirectoryPattern(other));
    await waitUntil('the other agent\'s plan to read the held state', async () => (endpoint.requests.length > readsBefore ? true : undefined), () => cluster.diagnostics(run.id));
    // Both engines go on; the zombie's next call to the server (its unlock, then its plan upload) is held.
    endpoint.release();
    const planned = await cluster.waitForRun(run.id, ['planned']);
    await waitForHeldRequest(proxy, /^\w+ \/api\/agent\/v1\/job\//, () => cluster.diagnostics(run.id));
    const restoredAt = cluster.server.output().length;
    proxy.restore();

    await waitForZombieToLetGo(cluster, zombie, jobId, run.id);
    const late = assertJobRequestsRefused(cluster, restoredAt, jobId);
    assert.ok(late.some((r) => r.path.startsWith('/api/agent/v1/job/') && r.status === 401), `the zombie's job-token calls: ${JSON.stringify(late)}`);

    // One plan result: the other agent's. The zombie's start line is there (it started the job), its result is not.
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'planned');
    const plan = await getPhase(cluster.server, relatedId(planned, 'plan'));
    assert.equal(plan.attributes.status, 'finished');
    assert.equal(plan.attributes['resource-additions'], 1);
    const planLog = await readLog(cluster.server, relatedId(planned, 'plan'));
    assert.equal(planLog.match(/^Plan: \d+ to add/gm)?.length, 1, planLog);
    assert.equal(planLog.match(new RegExp(`Outpost agent ${zombie.name}: plan job`, 'g'))?.length, 1, planLog);
    assert.equal(planLog.match(new RegExp(`Outpost agent ${other.name}: plan job`, 'g'))?.length, 1, planLog);
    const lost = cluster.server.output().split('\n').filter((line) => line.includes('job lost its agent'));
    assert.equal(lost.length, 1, lost.join('\n'));
    assert.match(lost[0]!, /queued again/);

    // The plan that was kept is whole: it applies.
    await runAction(cluster.server, run.id, 'apply');
    const applied = await cluster.waitForRun(run.id, ['applied']);
    assert.equal(applied.attributes['resource-additions'], 1);
  });
}
