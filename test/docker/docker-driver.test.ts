// The docker driver end to end, with the real server, agent (a process on
// the host), Docker Engine and OpenTofu: each job of a run runs in a
// container of its own from the runner image, jobs of different runs run
// side by side in separate containers, and no container outlives its job.
//
// Jobs are held at a known point by HTTP state reads (`terraform_remote_state`,
// built in) from endpoints the test answers when it wants: while a read is
// held, the job's container exists and is running, so what the test sees in
// Docker does not depend on timing. Job containers share the host's network
// (the driver's choice for an agent on the host), so they reach the
// endpoints on 127.0.0.1.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRun, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { waitUntil } from '../support/waits.ts';
import { HeldEndpoint } from '../support/job-control.ts';
import { claimedJob, dockerUnavailable, jobLabels, runnerImage, setupDockerCluster, waitForNoContainers, waitForRunningContainers, type ContainerInfo } from '../support/docker-cluster.ts';

const unavailable = dockerUnavailable([runnerImage]);

/**
 * A configuration whose plan waits for a read of `planGate` and whose apply
 * waits for a read of `applyGate` (an address only known after apply, so it
 * is read then); a provisioner prints where it runs.
 */
function gatedConfig(planGate: string, applyGate: string, label: string): Record<string, string> {
  return {
    'main.tf': `
data "terraform_remote_state" "plan_gate" {
  backend = "http"
  config = {
    address = "${planGate}"
  }
}

resource "terraform_data" "apply_gate_address" {
  input = "${applyGate}"
}

data "terraform_remote_state" "apply_gate" {
  backend = "http"
  config = {
    address = terraform_data.apply_gate_address.output
  }
}

resource "terraform_data" "where" {
  input = "${label}"
  provisioner "local-exec" {
    command = "if [ -f /.dockerenv ]; then echo \\"in-a-container uid=$(id -u) cgroup=$(grep -o 'docker[/-][0-9a-f]*' /proc/self/cgroup | head -n 1)\\"; else echo not-in-a-container; fi"
  }
}

output "label" {
  value = terraform_data.where.output
}
`,
  };
}

/** A configuration whose plan waits for a read of `gate`. */
function planGatedConfig(gate: string, label: string): Record<string, string> {
  return {
    'main.tf': `
data "terraform_remote_state" "gate" {
  backend = "http"
  config = {
    address = "${gate}"
  }
}

resource "terraform_data" "quick" {
  input = "${label}"
}

output "label" {
  value = terraform_data.quick.output
}
`,
  };
}

describe('docker driver end to end', { skip: unavailable ?? false }, () => {
  test('a run plans and applies in runner containers, one per job, and leaves none behind', async (t) => {
    const cluster = await setupDockerCluster(t);
    const { server, agent } = cluster;
    const planGate = await HeldEndpoint.start(t);
    const applyGate = await HeldEndpoint.start(t);
    const cv = await uploadConfiguration(server, cluster.workspace.id, gatedConfig(planGate.url('/plan'), applyGate.url('/apply'), 'docker-e2e'));
    const run = await createRun(server, cluster.workspace.id, cv);

    // The plan job is held in its read: its container runs.
    await waitUntil('the plan to read its gate', async () => (planGate.requests.length > 0 ? true : undefined), () => cluster.describe(run.id));
    const planJob = claimedJob(agent, run.id, 'plan');
    const [planContainer] = await waitForRunningContainers(cluster, 1, run.id);
    assertJobContainer(planContainer!, planJob.job, agent.dataDir);
    planGate.release();

    // The apply job, held likewise, runs in another container; the plan's is gone.
    await waitUntil('the apply to read its gate', async () => (applyGate.requests.length > 0 ? true : undefined), () => cluster.describe(run.id));
    const applyJob = claimedJob(agent, run.id, 'apply');
    assert.notEqual(applyJob.job, planJob.job);
    const [applyContainer] = await waitForRunningContainers(cluster, 1, run.id);
    assertJobContainer(applyContainer!, applyJob.job, agent.dataDir);
    assert.notEqual(applyContainer!.id, planContainer!.id);
    applyGate.release();

    await cluster.waitFor(run.id, ['applied']);
    const applyLog = await readLog(server, relatedId(run, 'apply'));
    assert.match(applyLog, /driver docker/, applyLog);
    assert.match(applyLog, /Apply complete!/, applyLog);
    // The provisioner ran in the apply job's container, as the runner user.
    assert.match(applyLog, new RegExp(`in-a-container uid=1000 cgroup=docker[/-]${applyContainer!.id}`), applyLog);
    await waitForNoContainers(agent.dataDir, () => cluster.describe(run.id));
  });

  test('an agent with OUTPOST_AGENT_CONCURRENCY=3 runs three runs at once in three containers', async (t) => {
    const cluster = await setupDockerCluster(t, { concurrency: 3 });
    const { server, agent } = cluster;
    const gate = await HeldEndpoint.start(t);
    const workspaces = [cluster.workspace, await cluster.createWorkspace(), await cluster.createWorkspace()];
    const runs = [];
    for (const [index, workspace] of workspaces.entries()) {
      const cv = await uploadConfiguration(server, workspace.id, planGatedConfig(gate.url(`/gate-${index}`), `run-${index}`));
      runs.push(await createRun(server, workspace.id, cv));
    }

    // All three plans are held in their reads at the same moment: three containers run.
    await waitUntil('three plans to read their gates', async () => (new Set(gate.requests).size >= 3 ? true : undefined), () => cluster.describe());
    const containers = await waitForRunningContainers(cluster, 3);
    const planJobs = runs.map((run) => claimedJob(agent, run.id, 'plan').job).sort();
    assert.deepEqual(containers.map((c) => c.labels[jobLabels.jobId]).sort(), planJobs, JSON.stringify(containers, null, 2));
    for (const container of containers) assertJobContainer(container, container.labels[jobLabels.jobId]!, agent.dataDir);
    assert.equal(new Set(containers.map((c) => c.id)).size, 3);
    gate.release();

    for (const run of runs) await cluster.waitFor(run.id, ['applied']);
    await waitForNoContainers(agent.dataDir, () => cluster.describe());
  });
});

function assertJobContainer(container: ContainerInfo, jobId: string, dataDir: string): void {
  const shown = JSON.stringify(container, null, 2);
  assert.equal(container.labels[jobLabels.jobId], jobId, shown);
  assert.equal(container.labels[jobLabels.dataDir], dataDir, shown);
  assert.equal(container.image, runnerImage, shown);
  assert.equal(container.name, `outpost-${jobId}`, shown);
  assert.equal(container.running, true, shown);
}

