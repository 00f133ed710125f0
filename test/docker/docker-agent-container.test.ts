// The agent itself in a container, started as the Scalr agent's Docker recipe does:
// the Docker socket and the data dir mounted (the data dir at the same path
// on the host and in the container), the token, URL and data dir given by
// their SCALR_* names, `outpost/agent:latest run`. Its job containers are
// created by the host's daemon from the runner image and join the agent
// container's network, so they reach the control plane at the agent's URL:
// the server listens on every interface and both reach it through the
// default bridge's gateway.
//
// Killing the agent container mid-apply and starting the same container
// again leaves no job container behind and ends the run in a clear state.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { tofuBinary } from '../support/toolchain.ts';
import { createPool, createRun, createWorkspace, getWorkspace, listAgents, readLog, relatedId, uploadConfiguration, type RunStatus } from '../support/api-calls.ts';
import { processLogs, waitForRunStatus, waitUntil } from '../support/waits.ts';
import { processesMatching, quickConfig, sleepingApplyConfig, sleepingCommand, waitForNoProcesses } from '../support/job-control.ts';
import { startContainerReachableServer } from '../support/container-reachable-server.ts';
import { agentImage, docker, dockerCli, dockerDiagnostics, dockerUnavailable, jobContainersOf, jobLabels, removeContainersAfter, runnerImage, withDiagnostics, type ContainerInfo } from '../support/docker-cluster.ts';

const unavailable = dockerUnavailable([runnerImage, agentImage]);

/** Marks the agent containers this file starts, for cleanup. */
const testLabel = 'io.outpost.e2e-test';

describe('the agent in a container, started as the Scalr agent\'s recipe does', { skip: unavailable ?? false }, () => {
  test('applies runs in runner containers; killed mid-apply and started again, it leaves no job container and the run errors agent_lost', async (t: TestContext) => {
    // Lost jobs are reported at once by the restarted agent; a short lease is the fallback.
    const { server } = await startContainerReachableServer(t, { OUTPOST_LEASE_TIMEOUT: '5s', OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s' });
    const pool = await createPool(server);
    const workspace = await createWorkspace(server, { poolId: pool.id });

    // The data dir, on the host and at the same path in the agent container.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-agent-container-'));
    await chmod(dataDir, 0o755);
    const unique = randomBytes(5).toString('hex');
    const name = `outpost-e2e-agent-${unique}`;
    // After hooks run in the order they are added: the agent container goes
    // first (it starts no more jobs), then its job containers, then the data dir.
    removeContainersAfter(t, `${testLabel}=${unique}`);
    removeContainersAfter(t, `${jobLabels.dataDir}=${dataDir}`);
    t.after(() => rm(dataDir, { recursive: true, force: true, maxRetries: 3 }));

    // As in the Scalr agent's recipe: no URL; the pool token carries the server's public (bridge gateway) URL.
    // No release site is reachable here: the agent uses the locally built OpenTofu, mounted read-only.
    const tofu = tofuBinary();
    await docker([
      'run', '-d', '--name', name, '--label', `${testLabel}=${unique}`,
      '-v', '/var/run/docker.sock:/var/run/docker.sock',
      '-v', `${dataDir}:${dataDir}`,
      '-v', `${tofu}:${tofu}:ro`,
      '-e', `SCALR_AGENT_TOKEN=${pool.token}`,
      '-e', `SCALR_AGENT_DATA_DIR=${dataDir}`,
      '-e', `SCALR_AGENT_NAME=${name}`,
      '-e', `OUTPOST_AGENT_CONTAINER_TASK_IMAGE=${runnerImage}`,
      '-e', `OUTPOST_AGENT_ENGINE_PATH=${tofu}`,
      agentImage, 'run',
    ]);
    const agentId = (await docker(['inspect', '--format', '{{.Id}}', name])).trim();
    const agentLogs = async (): Promise<string> => {
      const logs = await dockerCli(['logs', name]);
      return logs.stdout + logs.stderr;
    };
    const describeAll = async (runId?: string): Promise<string> => {
      const parts = [processLogs([server]), `--- docker logs ${name}\n${await agentLogs()}`, await dockerDiagnostics(`${jobLabels.dataDir}=${dataDir}`)];
      if (runId !== undefined) {
        const run = await server.api<{ data: { attributes: unknown; relationships?: unknown } }>('GET', `/api/v2/runs/${runId}`);
        parts.unshift(`run ${runId}: ${JSON.stringify(run.body)}`);
      }
      return parts.join('\n');
    };
    const waitForRun = (runId: string, statuses: readonly RunStatus[]) =>
      withDiagnostics(waitForRunStatus(server, runId, statuses, 90_000), async () => `--- docker logs ${name}\n${await agentLogs()}\n${await dockerDiagnostics(`${jobLabels.dataDir}=${dataDir}`)}`);
    const registrations = async (): Promise<number> => ((await agentLogs()).match(/"msg":"registered"/g) ?? []).length;

    await waitUntil(
      `agent container ${name} to register`,
      async () => ((await listAgents(server, pool.id)).some((agent) => agent.attributes.name === name) ? true : undefined),
      () => describeAll(),
      60_000,
    );
    assert.match(await agentLogs(), /"driver":"docker"[^\n]*"inContainer":true[^\n]*"msg":"driver selected"/, await agentLogs());

    // A run applies: both jobs in runner containers created by the host's daemon.
    const quick = await uploadConfiguration(server, workspace.id, quickConfig('from-the-agent-container'));
    const first = await createRun(server, workspace.id, quick);
    await waitForRun(first.id, ['applied']);
    const firstApplyLog = await readLog(server, relatedId(first, 'apply'));
    assert.match(firstApplyLog, /driver docker/, firstApplyLog);
    assert.match(firstApplyLog, /Apply complete!/, firstApplyLog);

    // A run whose apply sleeps: its container runs from the runner image, in the agent's network.
    const command = sleepingCommand();
    const sleeping = await uploadConfiguration(server, workspace.id, sleepingApplyConfig(command));
    const second = await createRun(server, workspace.id, sleeping);
    await waitForRun(second.id, ['applying']);
    await waitUntil(
      `the provisioner of run ${second.id} to be sleeping`,
      async () => ((await processesMatching(`sleep ${command.duration.replace('.', '[.]')}`)).length > 0 ? true : undefined),
      () => describeAll(second.id),
    );
    let jobContainer: ContainerInfo | undefined;
    await waitUntil(
      'the apply job container',
      async () => {
        [jobContainer] = (await jobContainersOf(dataDir)).filter((c) => c.running);
        return jobContainer;
      },
      () => describeAll(second.id),
    );
    const shown = JSON.stringify(jobContainer, null, 2);
    assert.equal(jobContainer!.image, runnerImage, shown);
    assert.equal(jobContainer!.networkMode, `container:${agentId}`, shown);
    assert.equal(jobContainer!.labels[jobLabels.dataDir], dataDir, shown);

    // Kill the agent container mid-apply: its job container runs on, orphaned.
    await docker(['kill', name]);
    const orphaned = await jobContainersOf(dataDir);
    assert.ok(orphaned.some((c) => c.id === jobContainer!.id && c.running), `the job container should outlive the agent:\n${await describeAll(second.id)}`);

    // Started again, the agent removes it before registering, and reports the job lost.
    await docker(['start', name]);
    await waitUntil('the restarted agent container to register', async () => ((await registrations()) >= 2 ? true : undefined), () => describeAll(second.id), 60_000);
    assert.deepEqual(await jobContainersOf(dataDir), [], `a job container of the data dir remains:\n${await describeAll(second.id)}`);
    await waitForNoProcesses(command.pattern, () => describeAll(second.id));
    const errored = await waitForRun(second.id, ['errored']);
    assert.equal(errored.attributes['error-code'], 'agent_lost', JSON.stringify(errored.attributes));

    // The workspace is unlocked and the restarted agent applies the next run.
    assert.equal((await getWorkspace(server, workspace.id)).attributes.locked, false, await describeAll());
    const after = await uploadConfiguration(server, workspace.id, quickConfig('after-the-restart'));
    const third = await createRun(server, workspace.id, after);
    await waitForRun(third.id, ['applied']);
    await waitUntil(
      'no job container of the data dir',
      async () => ((await jobContainersOf(dataDir)).length === 0 ? true : undefined),
      () => describeAll(third.id),
    );
  });
});
