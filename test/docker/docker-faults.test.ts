// The docker driver when things go wrong, end to end with the real server,
// agent (a process on the host), Docker Engine and OpenTofu: cancel and
// force-cancel of a job in a container, a job over its memory limit, an
// agent killed mid-job and restarted on the same data dir too late to take
// its job back (docker-recover.test.ts has it in time), and bad input (an
// image that does not exist, no Docker socket, an image without a shell).
//
// Container processes are processes of the host's kernel, so the host sees a
// provisioner's `sleep` with pgrep, as the local-driver tests do.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { startAgent } from '../support/cluster.ts';
import { createRun, getPhase, getRun, getWorkspace, readLog, relatedId, runAction, uploadConfiguration, type Run } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { waitUntil } from '../support/waits.ts';
import {
  assertWorkspaceUsable,
  exitCodeOf,
  HeldEndpoint,
  quickConfig,
  quietHeartbeats,
  sleepingApplyConfig,
  sleepingCommand,
  type SleepingCommand,
  tofuInterruptMessage,
  waitForLog,
  waitForNoProcesses,
  waitForSleepingProvisioner,
} from '../support/job-control.ts';
import { docker, dockerAgentEnv, dockerCli, dockerUnavailable, jobContainersOf, memoryLimitUnsupported, runnerImage, setupDockerCluster, signalsDelivered, waitForNoContainers, waitForRunningContainers, type DockerCluster } from '../support/docker-cluster.ts';

const unavailable = dockerUnavailable([runnerImage]);





/** Starts a run whose apply sleeps in a provisioner; returns once it sleeps in the apply job's container. */
async function startSleepingApply(cluster: DockerCluster, command: SleepingCommand, options: Parameters<typeof sleepingApplyConfig>[1] = {}) {
  const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, sleepingApplyConfig(command, options));
  const run = await createRun(cluster.server, cluster.workspace.id, cv);
  await cluster.waitFor(run.id, ['applying']);
  await waitForSleepingProvisioner(command, run.id, () => cluster.describe(run.id));
  const [container] = await waitForRunningContainers(cluster, 1, run.id);
  return { run, applyId: relatedId(run, 'apply'), container: container! };
}

describe('docker driver: job control and faults', { skip: unavailable ?? false }, () => {
  test('cancel during apply interrupts OpenTofu in the container, releases the lock and removes the container', async (t) => {
    const cluster = await setupDockerCluster(t, { serverEnv: quietHeartbeats });
    const since = Math.floor(Date.now() / 1000) - 1;
    const command = sleepingCommand();
    const { run, applyId, container } = await startSleepingApply(cluster, command);

    await runAction(cluster.server, run.id, 'cancel');
    const canceled = await cluster.waitFor(run.id, ['canceled']);
    assert.equal(canceled.attributes['error-code'], null, JSON.stringify(canceled.attributes));
    assert.equal((await getPhase(cluster.server, applyId)).attributes.status, 'canceled');
    const applyLog = await readLog(cluster.server, applyId);
    // The interrupt went through the container's init to the operation, and on to OpenTofu.
    assert.match(applyLog, /received SIGINT: canceling the job/, applyLog);
    assert.match(applyLog, tofuInterruptMessage, applyLog);
    assert.doesNotMatch(applyLog, /Error releasing the state lock|Failed to unlock state/i, applyLog);

    await waitForNoContainers(cluster.agent.dataDir, () => cluster.describe(run.id));
    await waitForNoProcesses(command.pattern, () => cluster.describe(run.id));
    // The container got the interrupt and ended by itself: it was never killed.
    assert.deepEqual(await signalsDelivered(container.id, since), ['2'], await cluster.describe(run.id));
    await assertWorkspaceUsable(cluster, 'after-cancel', [/driver docker/]);
  });

  test('force-cancel of a job that outlasts the interrupt kills and removes its container', async (t) => {
    const cluster = await setupDockerCluster(t, { serverEnv: quietHeartbeats, agentEnv: { OUTPOST_AGENT_KILL_GRACE: '1s' } });
    const since = Math.floor(Date.now() / 1000) - 1;
    const endpoint = await HeldEndpoint.start(t);
    const command = sleepingCommand();
    // The provisioner ignores SIGINT and the apply waits for a read that is never answered.
    const { run, applyId, container } = await startSleepingApply(cluster, command, {
      ignoreInterrupt: true,
      applyTimeStateUrl: endpoint.url('/never-answered'),
    });
    await waitUntil('the apply to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), () => cluster.describe(run.id));

    // A plain cancel interrupts OpenTofu, which goes on waiting: the container keeps running.
    await runAction(cluster.server, run.id, 'cancel');
    await waitForLog(cluster.server, applyId, tofuInterruptMessage, () => cluster.describe(run.id));
    await sleep(2_000);
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'applying', await cluster.describe(run.id));
    const [stillRunning] = await jobContainersOf(cluster.agent.dataDir);
    assert.ok(stillRunning?.running && stillRunning.id === container.id, `the job's container should still run:\n${await cluster.describe(run.id)}`);

    await runAction(cluster.server, run.id, 'force-cancel');
    const forced = await getRun(cluster.server, run.id);
    assert.equal(forced.attributes.status, 'force_canceled', JSON.stringify(forced.attributes));
    assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false);

    // The agent kills the container (everything in it) and removes it.
    await waitForNoContainers(cluster.agent.dataDir, () => cluster.describe(run.id));
    await waitForNoProcesses(command.pattern, () => cluster.describe(run.id));
    assert.match(cluster.agent.output(), /force-cancel: the sandbox will be killed/, cluster.agent.output());
    // Docker delivered the interrupt, then SIGKILL.
    const signals = await signalsDelivered(container.id, since);
    assert.equal(signals[0], '2', `${JSON.stringify(signals)}\n${await cluster.describe(run.id)}`);
    assert.ok(signals.includes('9'), `${JSON.stringify(signals)}\n${await cluster.describe(run.id)}`);
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'force_canceled');
    await assertWorkspaceUsable(cluster, 'after-force-cancel', [/driver docker/]);
  });

  // 256 MiB: a job's own processes (the Node operation and OpenTofu) peak
  // near 80 MiB, so the plan runs within it and only the provisioner, which
  // asks for 1 GiB, goes over. (At 64 MiB the plan itself is killed.)
  test('a job over OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT errors out_of_memory, and its log says so', { skip: memoryLimitUnsupported() ?? false }, async (t) => {
    const cluster = await setupDockerCluster(t, { agentEnv: { OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT: '256' } });
    // `tail` keeps a whole line in memory, and 1 GiB of zero bytes is one
    // line; the kernel kills it, the provisioner fails, and so does the apply.
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, {
      'main.tf': 'resource "terraform_data" "hungry" {\n  provisioner "local-exec" {\n    command = "head -c 1G /dev/zero | tail >/dev/null"\n  }\n}\n',
    });
    const run = await createRun(cluster.server, cluster.workspace.id, cv);
    const errored = await cluster.waitFor(run.id, ['errored']);
    const applyId = relatedId(run, 'apply');
    const applyLog = await readLog(cluster.server, applyId);
    const shown = `${JSON.stringify(errored.attributes)}\n${applyLog}\n${await cluster.describe(run.id)}`;
    // The plan ran within the limit; the apply's provisioner went over it.
    assert.equal((await getPhase(cluster.server, relatedId(run, 'plan'))).attributes.status, 'finished', shown);
    assert.equal(errored.attributes['error-code'], 'out_of_memory', shown);
    assert.match(errored.attributes['error-message'] ?? '', /memory limit/, shown);
    assert.match(applyLog, /terraform_data\.hungry: Provisioning with 'local-exec'/, shown);
    assert.match(applyLog, /the job ran out of memory and was killed/, shown);
    await waitForNoContainers(cluster.agent.dataDir, () => cluster.describe(run.id));
  });

  test('an agent killed mid-apply and restarted after its lease lapsed removes the leftover container; the run errors agent_lost', async (t) => {
    const cluster = await setupDockerCluster(t, { serverEnv: { OUTPOST_LEASE_TIMEOUT: '5s', OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s' } });
    const { agent } = cluster;
    const command = sleepingCommand();
    const { run, container } = await startSleepingApply(cluster, command);

    // SIGKILL to the agent alone: its job's container runs on without it.
    await agent.kill();
    const [left] = await jobContainersOf(agent.dataDir);
    assert.ok(left?.running && left.id === container.id, `the job's container should outlive the agent:\n${await cluster.describe(run.id)}`);

    // Nobody renews the lease: the server ends the apply, never re-running it.
    const errored = await cluster.waitFor(run.id, ['errored']);
    assert.equal(errored.attributes['error-code'], 'agent_lost', JSON.stringify(errored.attributes));

    // A new agent process on the same data dir finds the server has moved on, and removes the container.
    await agent.restart();
    await waitForNoContainers(agent.dataDir, () => cluster.describe(run.id));
    assert.match(agent.output(), /the server had already moved on from a job of the previous agent process/, agent.output());
    assert.match(agent.output(), /removed the sandbox of a job the previous agent process left running/, agent.output());
    await waitForNoProcesses(command.pattern, () => cluster.describe(run.id));
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'errored');
    await assertWorkspaceUsable(cluster, 'after-agent-restart', [/driver docker/]);
  });

  test('a runner image that does not exist: the run errors sandbox_failed, naming the image', async (t) => {
    const image = `outpost/does-not-exist:1`;
    const cluster = await setupDockerCluster(t, { agentEnv: { OUTPOST_AGENT_CONTAINER_TASK_IMAGE: image } });
    const { errored, planLog, shown } = await erroredRun(cluster, 'sandbox_failed');
    assert.ok(errored.attributes['error-message']?.includes(image), shown);
    assert.ok(planLog.includes(image), shown);
    assert.match(planLog, /OUTPOST_AGENT_CONTAINER_TASK_IMAGE/, shown);
    await waitForNoContainers(cluster.agent.dataDir, () => cluster.describe(errored.id));
  });

  test('OUTPOST_AGENT_DRIVER=docker without a Docker socket: the agent exits 2 saying what to fix', async (t) => {
    const cluster = await setupDockerCluster(t);
    const agent = await startAgent(cluster.server, {
      token: cluster.pool.token,
      t,
      env: dockerAgentEnv({ DOCKER_HOST: 'unix:///nonexistent.sock' }),
    });
    assert.equal(await exitCodeOf(agent, 30_000), 2, agent.output());
    const output = agent.output();
    assert.match(output, /OUTPOST_AGENT_DRIVER=docker/, output);
    assert.match(output, /unix:\/\/\/nonexistent\.sock/, output);
    // How to fix it: mount the socket, or point DOCKER_HOST at one.
    assert.match(output, /-v \/var\/run\/docker\.sock:\/var\/run\/docker\.sock/, output);
    assert.match(output, /DOCKER_HOST/, output);
    assert.doesNotMatch(output, /"msg":"registered"/, output);
  });

  test('a runner image without /bin/sh: the run errors sandbox_failed, saying the image has no shell', async (t) => {
    const image = await shelllessImage(t);
    const cluster = await setupDockerCluster(t, { agentEnv: { OUTPOST_AGENT_CONTAINER_TASK_IMAGE: image } });
    const { errored, planLog, shown } = await erroredRun(cluster, 'sandbox_failed');
    assert.match(errored.attributes['error-message'] ?? '', new RegExp(`runner image ${escapeRegExp(image)} has no /bin/sh`), shown);
    assert.match(planLog, /has no \/bin\/sh/, shown);
    await waitForNoContainers(cluster.agent.dataDir, () => cluster.describe(errored.id));
  });
});

/** An image whose file system is an empty /tmp and nothing else; removed when the test ends. */
async function shelllessImage(t: TestContext): Promise<string> {
  const dir = await tempDir(t, 'outpost-no-shell-');
  await mkdir(path.join(dir, 'root', 'tmp'), { recursive: true });
  const tarball = path.join(dir, 'rootfs.tar');
  await new Promise<void>((resolve, reject) =>
    execFile('tar', ['-C', path.join(dir, 'root'), '-cf', tarball, 'tmp'], (error) => (error ? reject(error) : resolve())),
  );
  const image = `outpost-test/no-shell:${randomBytes(6).toString('hex')}`;
  t.after(async () => {
    // Containers of the image first (hooks run in the order they are added:
    // this one before the cluster's), else the image would only be untagged.
    const ids = (await dockerCli(['ps', '-aq', '--filter', `ancestor=${image}`])).stdout.split('\n').filter((id) => id !== '');
    if (ids.length > 0) await dockerCli(['rm', '-f', '-v', ...ids]);
    await dockerCli(['image', 'rm', '-f', image]);
  });
  await docker(['import', tarball, image]);
  return image;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Queues a quick run, waits for it to error with `code`, and returns it with its plan log and what to show on failure. */
async function erroredRun(cluster: DockerCluster, code: string): Promise<{ errored: Run; planLog: string; shown: string }> {
  const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, quickConfig());
  const run = await createRun(cluster.server, cluster.workspace.id, cv);
  const errored = await cluster.waitFor(run.id, ['errored']);
  const planLog = await readLog(cluster.server, relatedId(run, 'plan'));
  const shown = `${JSON.stringify(errored.attributes)}\n${planLog}\n${await cluster.describe(run.id)}`;
  assert.equal(errored.attributes['error-code'], code, shown);
  return { errored, planLog, shown };
}
