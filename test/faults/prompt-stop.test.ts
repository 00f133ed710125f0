// Stopping is prompt: Ctrl-C (SIGINT) or SIGTERM ends `outpost server`,
// `outpost agent run` and `outpost quickstart` with exit code 0 when no job
// runs, also when the control plane is unreachable; with a job running, the
// stop mode applies and a further signal escalates. Real processes, real
// signals. The assertions are on how each process exits and what it logged,
// not on durations: each handle's stop() kills with SIGKILL (exit null) when
// a process outlives its signal by 10 s, which fails the exit-code checks.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, test } from 'node:test';
import { cliCommand, inheritedEnvironment } from '../support/cluster-environment.ts';
import { startAgent, type ServerHandle } from '../support/cluster.ts';
import { freePort } from '../support/ports.ts';
import { logTail, readLog, spawnLogged, type SpawnedProcess } from '../support/spawned-process.ts';
import { tofuBinary } from '../support/toolchain.ts';
import { listAgents } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import { HeldEndpoint, killLeftoversAfter, planTimeReadConfig, waitForNoProcesses } from '../support/job-control.ts';
import { packFiles } from '../support/api-calls.ts';

async function agentStatuses(server: ServerHandle, poolId: string): Promise<string[]> {
  return (await listAgents(server, poolId)).map((agent) => agent.attributes.status);
}

describe('stopping with no job running (sqlite)', () => {
  test('outpost server exits 0 on SIGINT, and again on SIGTERM, while an agent holds its long-poll open', async (t) => {
    const cluster = await setupCluster(t, 'sqlite');
    await waitUntil('the agent to poll', async () => ((await agentStatuses(cluster.server, cluster.pool.id)).includes('idle') ? true : undefined), () => cluster.diagnostics());
    assert.equal(await cluster.server.stop('SIGINT'), 0, cluster.server.output());
    await cluster.server.restart();
    await waitUntil('the agent to poll the restarted server', async () => ((await agentStatuses(cluster.server, cluster.pool.id)).includes('idle') ? true : undefined), () => cluster.diagnostics(), 30_000);
    assert.equal(await cluster.server.stop('SIGTERM'), 0, cluster.server.output());
  });

  test('an idle agent exits 0 on SIGTERM and on SIGINT, and leaves the pool at once', async (t) => {
    const cluster = await setupCluster(t, 'sqlite');
    const agent = cluster.agents[0]!;
    assert.equal(await agent.stop('SIGTERM'), 0, agent.output());
    assert.deepEqual(await agentStatuses(cluster.server, cluster.pool.id), [], 'the stopped agent is still listed');
    await agent.restart();
    await waitUntil('the agent to register again', async () => ((await agentStatuses(cluster.server, cluster.pool.id)).length === 1 ? true : undefined), () => cluster.diagnostics());
    assert.equal(await agent.stop('SIGINT'), 0, agent.output());
    assert.match(agent.output(), /deregistered from the pool/);
  });

  test('an idle agent whose control plane is down exits 0 on SIGTERM, trying to deregister once', async (t) => {
    const cluster = await setupCluster(t, 'sqlite', { agentEnv: { OUTPOST_AGENT_LOG_LEVEL: 'debug' } });
    const agent = cluster.agents[0]!;
    await cluster.server.kill();
    await waitUntil('the agent to notice the outage', async () => (/the control plane cannot be reached/.test(agent.output()) ? true : undefined), () => cluster.diagnostics());
    assert.equal(await agent.stop('SIGTERM'), 0, agent.output());
    const output = agent.output();
    assert.match(output, /could not deregister/, output);
    assert.doesNotMatch(output, /"path":"\/api\/agent\/v1\/deregister"[^\n]*retrying/, 'the deregistration was retried');
  });

  test('an agent that has never reached its control plane exits 0 on SIGTERM', async (t) => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const agent = await startAgent({ url: nobody }, { token: `opp_${randomUUID().replaceAll('-', '')}`, t });
    await waitUntil('the agent to try to register', async () => (/the control plane cannot be reached/.test(agent.output()) ? true : undefined), async () => agent.output());
    assert.equal(await agent.stop('SIGTERM'), 0, agent.output());
    assert.match(agent.output(), /stopped before the control plane answered the registration/);
  });
});

describe('outpost quickstart and Ctrl-C (sqlite)', () => {
  test('idle: exits 0 at once; with a plan that ignores the interrupt: the first Ctrl-C interrupts it, the second kills it, the plan goes back to the queue, exit 0', async (t) => {
    const dir = await tempDir(t, 'outpost-quickstart-');
    const env = {
      ...inheritedEnvironment(),
      OUTPOST_QUICKSTART_DIR: dir,
      OUTPOST_LISTEN: '127.0.0.1:0',
      OUTPOST_AGENT_ENGINE_PATH: tofuBinary(),
      OUTPOST_AGENT_ENGINE_BUILD: 'off',
    };
    const logFile = path.join(dir, 'quickstart.log');
    const jobsPattern = `${path.join(dir, 'agent', 'jobs').replaceAll('.', '[.]')}/`;
    killLeftoversAfter(t, () => jobsPattern);
    const start = (): SpawnedProcess => spawnLogged({ ...cliCommand(['quickstart']), env, cwd: dir, logFile });

    const idle = start();
    t.after(() => idle.killGroup());
    await waitForText(logFile, 'Press Ctrl-C to stop.', idle);
    assert.match(readLog(logFile), /Run run-\w+ applied: 1 added/);
    assert.equal(await idle.stop('SIGINT'), 0, logTail(logFile));
    assert.match(readLog(logFile), /Stopping \(SIGINT\): no job is running\./);

    // Again, on the same data: queue a plan that waits on a read no one answers, and Ctrl-C twice.
    const busy = start();
    t.after(() => busy.killGroup());
    const before = readLog(logFile).length;
    await waitForText(logFile, 'Press Ctrl-C to stop.', busy, before);
    const printed = readLog(logFile).slice(before);
    const url = /export OUTPOST_URL=(\S+)/.exec(printed)?.[1];
    const token = /export OUTPOST_TOKEN=(\S+)/.exec(printed)?.[1];
    assert.ok(url && token, printed);
    const endpoint = await HeldEndpoint.start(t);
    const runId = await queueRun(url, token, planTimeReadConfig(endpoint.url(`/held-${randomUUID()}`)));
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), async () => logTail(logFile));

    busy.child.kill('SIGINT');
    await waitForText(logFile, 'interrupting the running job; press Ctrl-C again to kill it', busy, before);
    assert.equal(busy.hasExited(), false, 'the interrupt alone cannot end this plan: the quickstart must still be waiting');
    assert.equal(await busy.stop('SIGINT'), 0, logTail(logFile));
    await waitForNoProcesses(jobsPattern, async () => logTail(logFile));

    // The stop ended the plan without failing the run: it waits in the queue,
    // and the next start runs it (before its own example, in the same workspace).
    endpoint.release();
    const resumed = start();
    t.after(() => resumed.killGroup());
    const third = readLog(logFile).length;
    await waitForText(logFile, 'Press Ctrl-C to stop.', resumed, third);
    const again = readLog(logFile).slice(third);
    const status = await runStatus(/export OUTPOST_URL=(\S+)/.exec(again)![1]!, /export OUTPOST_TOKEN=(\S+)/.exec(again)![1]!, runId);
    assert.equal(status, 'applied', again);
    assert.equal(await resumed.stop('SIGTERM'), 0, logTail(logFile));
  });
});

async function waitForText(logFile: string, text: string, process: SpawnedProcess, from = 0): Promise<void> {
  await waitUntil(
    `"${text}" in the quickstart's output`,
    async () => {
      if (process.hasExited()) assert.fail(`the quickstart exited early:\n${logTail(logFile)}`);
      return readLog(logFile).slice(from).includes(text) ? true : undefined;
    },
    async () => logTail(logFile),
    120_000,
  );
}

/** Uploads `files` to the quickstart's workspace and queues a run; returns its id. */
async function queueRun(url: string, token: string, files: Record<string, string>): Promise<string> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.api+json' };
  const call = async <T>(method: string, target: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${url}${target}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    assert.ok(response.ok, `${method} ${target}: ${response.status} ${await response.clone().text()}`);
    return (await response.json()) as T;
  };
  const workspace = await call<{ data: { id: string } }>('GET', '/api/v2/organizations/default/workspaces/example');
  const cv = await call<{ data: { id: string; attributes: { 'upload-url': string } } }>('POST', `/api/v2/workspaces/${workspace.data.id}/configuration-versions`, {
    data: { type: 'configuration-versions', attributes: { 'auto-queue-runs': false } },
  });
  const upload = await fetch(cv.data.attributes['upload-url'], { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await packFiles(files)) });
  assert.ok(upload.ok, `upload: ${upload.status}`);
  const run = await call<{ data: { id: string } }>('POST', '/api/v2/runs', {
    data: {
      type: 'runs',
      attributes: { message: 'held plan' },
      relationships: { workspace: { data: { type: 'workspaces', id: workspace.data.id } }, 'configuration-version': { data: { type: 'configuration-versions', id: cv.data.id } } },
    },
  });
  return run.data.id;
}

async function runStatus(url: string, token: string, runId: string): Promise<string> {
  const response = await fetch(`${url}/api/v2/runs/${runId}`, { headers: { authorization: `Bearer ${token}` } });
  return ((await response.json()) as { data: { attributes: { status: string } } }).data.attributes.status;
}
