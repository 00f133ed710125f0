// An agent of the docker driver killed mid-job (SIGKILL to the agent process
// alone: its job containers run on) and started again on the same data dir,
// end to end with the real server, agent, Docker Engine and OpenTofu. The
// new process re-attaches to the container, continues the previous
// process's session, keeps the job's lease alive, ships the rest of the log
// and reports the result: the run completes as if nothing had happened, the
// job is never run twice, and its log has every line exactly once.
//
// The lease is short (10 s, heartbeats every 2 s) and each test waits
// longer than that with only the new process alive, so the job survives
// only if the new process holds its lease. And what is not taken back: the
// jobs of an agent that cannot continue its registration (they are reported
// lost at once, as with the local driver), and a container on the network of
// a container (the agent's) that restarted since, which Docker leaves with
// no network.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { containerJobDir } from '../../src/agent/drivers/docker/container-spec.ts';
import { createDockerDriver } from '../support/drivers-under-test.ts';
import { createRun, getRun, readLog, relatedId, uploadConfiguration, type Run } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { waitUntil } from '../support/waits.ts';
import { HeldEndpoint, planTimeReadConfig, sleepingApplyConfig, sleepingCommand, waitForLog, waitForNoProcesses, waitForSleepingProvisioner } from '../support/job-control.ts';
import { claimedJob, claimedJobs, docker, dockerCli, dockerUnavailable, jobContainersOf, jobLabels, removeContainersAfter, runnerImage, setupDockerCluster, waitForNoContainers, waitForRunningContainers, type DockerCluster } from '../support/docker-cluster.ts';

const unavailable = dockerUnavailable([runnerImage]);

const shortLease = { OUTPOST_LEASE_TIMEOUT: '10s', OUTPOST_AGENT_HEARTBEAT_INTERVAL: '2s' };
/** Longer than the lease: only a lease the restarted agent renews survives it. */
const longerThanTheLeaseMs = 12_000;

const tookBack = /the agent restarted and took this (plan|apply) job back; its sandbox ran on meanwhile\./g;

/** Kills the agent alone, checks its job's container runs on, starts it again and waits until it took the job back. */
async function restartAgentMidJob(cluster: DockerCluster, run: Run): Promise<void> {
  const { agent } = cluster;
  const [before] = await waitForRunningContainers(cluster, 1, run.id);
  await agent.kill();
  const [left] = await jobContainersOf(agent.dataDir);
  assert.ok(left?.running && left.id === before!.id, `the job's container should outlive the agent:\n${await cluster.describe(run.id)}`);
  await agent.restart();
  await waitUntil(
    'the restarted agent to take the job back',
    async () => (agent.output().includes('took back a job the previous agent process was running') ? true : undefined),
    () => cluster.describe(run.id),
    30_000,
  );
  const [after] = await jobContainersOf(agent.dataDir);
  assert.ok(after?.running && after.id === before!.id, `the restarted agent re-attached to the same container:\n${await cluster.describe(run.id)}`);
  assert.doesNotMatch(agent.output(), /"msg":"registered"[\s\S]*"msg":"registered"/, 'the restarted agent continued its session instead of registering again');
}

/** Every line of `log` that carries something (not blank, not a lone brace) appears once. */
function assertNoLineTwice(log: string, what: string): void {
  const counts = new Map<string, number>();
  for (const line of log.split('\n').filter((text) => !/^\s*[{}[\]()]*\s*$/.test(text))) counts.set(line, (counts.get(line) ?? 0) + 1);
  const twice = [...counts].filter(([, count]) => count > 1).map(([line]) => line);
  assert.deepEqual(twice, [], `${what}: lines written more than once:\n${log}`);
}

describe('docker driver: an agent restarted mid-job takes its running container back', { skip: unavailable ?? false }, () => {
  test('mid-plan: the plan completes and the run applies; the plan runs once and its log has every line once', async (t) => {
    const cluster = await setupDockerCluster(t, { serverEnv: shortLease });
    const endpoint = await HeldEndpoint.start(t);
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, planTimeReadConfig(endpoint.url('/held-state')));
    const run = await createRun(cluster.server, cluster.workspace.id, cv);
    await cluster.waitFor(run.id, ['planning']);
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), () => cluster.describe(run.id));
    const planId = relatedId(run, 'plan');

    await restartAgentMidJob(cluster, run);
    await sleep(longerThanTheLeaseMs);
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'planning', `the plan kept its lease:\n${await cluster.describe(run.id)}`);

    endpoint.release();
    const applied = await cluster.waitFor(run.id, ['applied']);
    const planLog = await readLog(cluster.server, planId);
    const shown = `${JSON.stringify(applied.attributes)}\n${planLog}\n${await cluster.describe(run.id)}`;
    assert.equal(claimedJobs(cluster.agent.output()).filter((job) => job.run === run.id && job.kind === 'plan').length, 1, `the plan was claimed once:\n${shown}`);
    assert.equal(planLog.match(tookBack)?.length, 1, shown);
    assert.equal(planLog.match(/^Outpost agent .*: plan job /gm)?.length, 1, shown);
    assert.match(planLog, /Plan: 1 to add, 0 to change, 0 to destroy\./, shown);
    assertNoLineTwice(planLog, 'the plan log');
    await waitForNoContainers(cluster.agent.dataDir, () => cluster.describe(run.id));
  });

  test('mid-apply, while output flows: the apply completes once and every line of its output is in the log once, in order', async (t) => {
    const cluster = await setupDockerCluster(t, { serverEnv: shortLease });
    // The provisioner prints a numbered line every 0.1 s until the gate file appears in the job's directory.
    const gate = `${containerJobDir}/gate`;
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, {
      'main.tf': [
        'resource "terraform_data" "ticking" {',
        '  provisioner "local-exec" {',
        `    command = "i=0; while [ ! -e ${gate} ]; do i=$((i+1)); echo tick-$i; sleep 0.1; done; echo gate-opened-after-$i"`,
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    const run = await createRun(cluster.server, cluster.workspace.id, cv);
    await cluster.waitFor(run.id, ['applying']);
    const applyId = relatedId(run, 'apply');
    await waitForLog(cluster.server, applyId, /tick-20\n/, () => cluster.describe(run.id));
    const applyJob = claimedJob(cluster.agent, run.id, 'apply');

    await restartAgentMidJob(cluster, run);
    await sleep(longerThanTheLeaseMs);
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'applying', `the apply kept its lease:\n${await cluster.describe(run.id)}`);

    await writeFile(path.join(cluster.agent.dataDir, 'jobs', applyJob.job, 'gate'), '');
    const applied = await cluster.waitFor(run.id, ['applied']);
    const applyLog = await readLog(cluster.server, applyId);
    const shown = `${JSON.stringify(applied.attributes)}\n${applyLog}\n${await cluster.describe(run.id)}`;
    const last = Number(/gate-opened-after-(\d+)/.exec(applyLog)?.[1]);
    const ticks = [...applyLog.matchAll(/\(local-exec\): tick-(\d+)$/gm)].map((match) => Number(match[1]));
    assert.ok(last > 100, `the provisioner ticked through the restart and the wait:\n${shown}`);
    assert.deepEqual(ticks, Array.from({ length: last }, (_, index) => index + 1), `every tick once, in order, none missing:\n${shown}`);
    assert.equal(claimedJobs(cluster.agent.output()).filter((job) => job.run === run.id && job.kind === 'apply').length, 1, `the apply was claimed once:\n${shown}`);
    assert.equal(applyLog.match(tookBack)?.length, 1, shown);
    assert.equal(applyLog.match(/Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./g)?.length, 1, shown);
    assertNoLineTwice(applyLog, 'the apply log');
    await waitForNoContainers(cluster.agent.dataDir, () => cluster.describe(run.id));
  });

  test('restarted without its saved registration, the agent cannot take the job back: it removes the container and reports the job lost at once', async (t) => {
    // A lease of two minutes: only the restarted agent's report can end the apply within the wait.
    const cluster = await setupDockerCluster(t, { serverEnv: { OUTPOST_LEASE_TIMEOUT: '120s' } });
    const { agent } = cluster;
    const command = sleepingCommand();
    const run = await createRun(cluster.server, cluster.workspace.id, await uploadConfiguration(cluster.server, cluster.workspace.id, sleepingApplyConfig(command)));
    await cluster.waitFor(run.id, ['applying']);
    await waitForSleepingProvisioner(command, run.id, () => cluster.describe(run.id));
    await waitForRunningContainers(cluster, 1, run.id);

    await agent.kill();
    await rm(path.join(agent.dataDir, 'agent-registration.json'));
    await agent.restart();
    const errored = await cluster.waitFor(run.id, ['errored'], 60_000);
    assert.equal(errored.attributes['error-code'], 'agent_lost', JSON.stringify(errored.attributes));
    assert.match(String(errored.attributes['error-message']), /agent running it restarted/);
    await waitForNoContainers(agent.dataDir, () => cluster.describe(run.id));
    await waitForNoProcesses(command.pattern, () => cluster.describe(run.id));
    assert.match(agent.output(), /removed the sandbox of a job the previous agent process left running/, agent.output());
  });

  test('a job container on the network of a container that restarted since is not taken back: it can no longer reach the control plane', async (t) => {
    // As with an agent in a container and OUTPOST_AGENT_CONTAINER_NETWORK=auto: job containers join the agent container's network.
    const provider = (await docker(['run', '-d', runnerImage, 'sleep', '300'])).trim();
    t.after(() => dockerCli(['rm', '-f', provider]));
    const dataDir = await tempDir(t, 'outpost-recover-network-');
    await chmod(dataDir, 0o755);
    removeContainersAfter(t, `${jobLabels.dataDir}=${dataDir}`);
    const driver = await createDockerDriver(dataDir, `container:${provider}`);
    const jobId = `job-${randomBytes(6).toString('hex')}`;
    const task = await driver.start({ jobId, agentId: 'agent-recover', command: ['sh', '-c', 'echo ready; sleep 60'], env: { PATH: '/usr/bin:/bin' }, workdir: path.join(dataDir, 'jobs', jobId), shared: [] });
    task.output.resume();

    const recovered = await (await createDockerDriver(dataDir, `container:${provider}`)).recover(task.handle);
    assert.ok(recovered, 'while the network container runs on, the job container is recovered');
    recovered.output.resume();
    await docker(['restart', '--time', '0', provider]);
    await assert.rejects((await createDockerDriver(dataDir, `container:${provider}`)).recover(task.handle), /runs on the network of container [0-9a-f]{12}, which has restarted since/);
    await driver.destroy(task.handle);
  });
});
