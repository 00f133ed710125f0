// The agent-k8s model on a real cluster, with the controller and the worker
// as agent processes on the node: a run planned and applied in job pods, a
// cancel, a controller killed while its pod waits (another controller takes
// the pod over and the plan finishes), a worker restarted mid-plan (it takes
// its running pod back), and the failures a person must be told about
// (unschedulable pod, image that cannot be pulled, no worker on the node).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRun, readLog, relatedId, runAction, uploadConfiguration } from '../support/api-calls.ts';
import { kubernetesUnavailable } from '../support/kubernetes-cluster.ts';
import { setupKubernetesAgents } from '../support/kubernetes-agents.ts';
import { HeldEndpoint, planTimeReadConfig, quickConfig, tofuInterruptMessage, waitForLog } from '../support/job-control.ts';
import { waitUntil } from '../support/waits.ts';

const unavailable = kubernetesUnavailable();

describe('agent-k8s: controller and worker (real cluster)', { skip: unavailable ?? false }, () => {
  test('a run is planned and applied in job pods; the worker takes each pod over; nothing is left', async (t) => {
    const k8s = await setupKubernetesAgents(t);
    await k8s.startController();
    await k8s.startWorker();
    const run = await createRun(k8s.server, k8s.workspace.id, await uploadConfiguration(k8s.server, k8s.workspace.id, quickConfig('in-a-pod')));
    const applied = await k8s.waitForRun(run.id, ['applied']);
    const planLog = await readLog(k8s.server, relatedId(applied, 'plan'));
    assert.match(planLog, /Outpost controller \S+: plan job \S+: creating pod outpost-job-/, planLog);
    assert.match(planLog, /Outpost agent \S+: plan job \S+, driver kubernetes/, planLog);
    assert.match(planLog, /Plan: 1 to add/, planLog);
    const applyLog = await readLog(k8s.server, relatedId(applied, 'apply'));
    assert.match(applyLog, /Apply complete! Resources: 1 added/, applyLog);
    await waitUntil('the job pods to be deleted', async () => (k8s.jobPods().length === 0 ? true : undefined), async () => JSON.stringify(k8s.jobPods()));
  });

  test('a cancel reaches the engine in the pod: the plan ends canceled, the pod goes', async (t) => {
    const k8s = await setupKubernetesAgents(t);
    const endpoint = await HeldEndpoint.start(t, k8s.nodeIp);
    await k8s.startController();
    await k8s.startWorker();
    const run = await createRun(k8s.server, k8s.workspace.id, await uploadConfiguration(k8s.server, k8s.workspace.id, planTimeReadConfig(endpoint.url('/held'))));
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), async () => JSON.stringify(k8s.jobPods()), 120_000);
    await runAction(k8s.server, run.id, 'cancel');
    // The interrupt reached OpenTofu in the pod (through exec); the read then finishes and it stops.
    await waitForLog(k8s.server, relatedId(run, 'plan'), tofuInterruptMessage, async () => JSON.stringify(k8s.jobPods()));
    endpoint.release();
    const canceled = await k8s.waitForRun(run.id, ['canceled']);
    assert.equal(canceled.attributes.status, 'canceled');
    await waitUntil('the job pod to be deleted', async () => (k8s.jobPods().length === 0 ? true : undefined), async () => JSON.stringify(k8s.jobPods()));
  });

  test('a controller killed while its pod waits for a worker: another controller takes the pod over and the plan finishes', async (t) => {
    const k8s = await setupKubernetesAgents(t);
    const first = await k8s.startController();
    const run = await createRun(k8s.server, k8s.workspace.id, await uploadConfiguration(k8s.server, k8s.workspace.id, quickConfig('taken-over')));
    await waitUntil('the job pod', async () => (k8s.jobPods().length === 1 ? true : undefined), async () => first.output());
    await first.kill();
    const second = await k8s.startController();
    await waitUntil('the second controller to take the pod over', async () => (/took over a job pod waiting for a worker/.test(second.output()) ? true : undefined), async () => second.output());
    await k8s.startWorker();
    const applied = await k8s.waitForRun(run.id, ['applied']);
    assert.equal(applied.attributes.status, 'applied');
  });

  test('a worker restarted mid-plan takes its running pod back; the plan finishes with its whole log once', async (t) => {
    const k8s = await setupKubernetesAgents(t);
    const endpoint = await HeldEndpoint.start(t, k8s.nodeIp);
    await k8s.startController();
    const worker = await k8s.startWorker();
    const run = await createRun(k8s.server, k8s.workspace.id, await uploadConfiguration(k8s.server, k8s.workspace.id, planTimeReadConfig(endpoint.url('/held'))), { autoApply: false });
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), async () => worker.output(), 120_000);
    // The worker records a job's pod once it follows its log: from the
    // operation's first line in the run log on, a restart finds the record.
    // (Killed before, it removes the pod and the job waits for its lease to lapse.)
    await waitForLog(k8s.server, relatedId(run, 'plan'), /^Outpost: fetching job specification$/m, () => worker.output());
    await worker.kill();
    await worker.restart();
    await waitUntil('the worker to take the job back', async () => (/took back a job the previous agent process was running/.test(worker.output()) ? true : undefined), async () => worker.output());
    endpoint.release();
    const planned = await k8s.waitForRun(run.id, ['planned']);
    const planLog = await readLog(k8s.server, relatedId(planned, 'plan'));
    assert.equal(planLog.match(/^Plan: 1 to add/gm)?.length, 1, planLog);
    assert.match(planLog, /the agent restarted and took this plan job back/, planLog);
  });

  test('a pod no node can take fails the job with the scheduler\'s reason', async (t) => {
    const k8s = await setupKubernetesAgents(t, { podTemplate: 'spec:\n  nodeSelector:\n    outpost.dev/no-such-node: "true"\n  containers: []\n' });
    await k8s.startController({ OUTPOST_AGENT_KUBERNETES_SCHEDULING_TIMEOUT: '5s' });
    await k8s.startWorker();
    const run = await createRun(k8s.server, k8s.workspace.id, await uploadConfiguration(k8s.server, k8s.workspace.id, quickConfig()));
    const errored = await k8s.waitForRun(run.id, ['errored']);
    assert.equal(errored.attributes['error-code'], 'sandbox_failed');
    assert.match(errored.attributes['error-message'] ?? '', /no worker took the job over within 5 s .*: it was not scheduled to any node \(Unschedulable: .*node affinity\/selector/, JSON.stringify(errored.attributes));
    await waitUntil('the job pod to be deleted', async () => (k8s.jobPods().length === 0 ? true : undefined), async () => JSON.stringify(k8s.jobPods()));
  });

  test('a job image that cannot be pulled fails the job with ErrImageNeverPull or ImagePullBackOff', async (t) => {
    const k8s = await setupKubernetesAgents(t, { podTemplate: 'spec:\n  containers:\n    - name: job\n      image: outpost/no-such-image:1\n      imagePullPolicy: Never\n' });
    await k8s.startController();
    await k8s.startWorker({ OUTPOST_AGENT_KUBERNETES_STARTUP_TIMEOUT: '20s' });
    const run = await createRun(k8s.server, k8s.workspace.id, await uploadConfiguration(k8s.server, k8s.workspace.id, quickConfig()));
    const errored = await k8s.waitForRun(run.id, ['errored']);
    assert.equal(errored.attributes['error-code'], 'sandbox_failed');
    assert.match(errored.attributes['error-message'] ?? '', /cannot start: (ErrImageNeverPull|ImagePullBackOff|ErrImagePull)/, JSON.stringify(errored.attributes));
  });

  test('with no worker on the node, the job fails naming the node', async (t) => {
    const k8s = await setupKubernetesAgents(t);
    await k8s.startController({ OUTPOST_AGENT_KUBERNETES_SCHEDULING_TIMEOUT: '8s' });
    const run = await createRun(k8s.server, k8s.workspace.id, await uploadConfiguration(k8s.server, k8s.workspace.id, quickConfig()));
    const errored = await k8s.waitForRun(run.id, ['errored']);
    assert.match(errored.attributes['error-message'] ?? '', new RegExp(`scheduled to node ${k8s.nodeName}, but no Outpost worker there took it over`), JSON.stringify(errored.attributes));
  });
});
