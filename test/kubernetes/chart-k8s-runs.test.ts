// agent-k8s installed with Helm on the test cluster, running real plans
// against a real server (reachable from the pods at the node's address):
// the node's worker and the controller register, a run is planned and
// applied in job pods, a cancel reaches OpenTofu in its pod, the controller
// pod killed mid-plan changes nothing for the running job, the worker pod
// killed mid-plan loses its job, which is planned again by its replacement,
// `helm upgrade` with a new token rolls every agent onto it (the old token
// is then revoked), and `helm uninstall` leaves no pod, object or agent.
//
// OpenTofu reaches the worker as an engine file on the node (a hostPath
// volume and OUTPOST_AGENT_ENGINE_PATH): no release site is reachable here.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { before, describe, test } from 'node:test';
import { createPool, createRun, createWorkspace, readLog, relatedId, runAction, uploadConfiguration, type Pool, type Workspace } from '../support/api-calls.ts';
import type { ServerHandle } from '../support/cluster.ts';
import { startServerReachableAt } from '../support/container-reachable-server.ts';
import { onlineAgentNames, rotatePoolToken, startHeldPlan, uninstallLeavesNothing } from '../support/chart-runs.ts';
import { ClusterTools, waitForCluster } from '../support/helm-release.ts';
import { quickConfig, tofuInterruptMessage, waitForLog } from '../support/job-control.ts';
import { clusterAgentImage } from '../support/kubernetes-cluster.ts';
import { nodeAddress } from '../support/kubernetes-agents.ts';
import { kubernetesClusterForTests } from '../support/kubernetes-tools.ts';
import { suiteHooks } from '../support/test-cluster.ts';
import { tofuBinary } from '../support/toolchain.ts';
import { waitForRunStatus, waitUntil } from '../support/waits.ts';

const { tools, kubeconfig, skip } = kubernetesClusterForTests('run plans through the agent-k8s chart on the test cluster');
const suffix = randomBytes(3).toString('hex');
const namespace = `outpost-k8s-runs-${suffix}`;
const release = 'agents';
const hostDir = `/tmp/outpost-k8s-runs-${suffix}`;
const engineInPod = '/opt/outpost-engine/tofu';

describe('agent-k8s installed with Helm runs real plans', { skip, timeout: 900_000 }, () => {
  const hooks = suiteHooks();
  let k: ClusterTools;
  let server: ServerHandle;
  let pool: Pool;
  let workspace: Workspace;
  let nodeIp: string;
  let podUrl: string;
  const component = (name: string) => `app.kubernetes.io/instance=${release},app.kubernetes.io/component=${name}`;
  const jobPods = () => k.pods(namespace, 'outpost.dev/job');
  const describeAll = async () => `${await k.kubectl(['get', 'pods', '-n', namespace, '-o', 'wide'])}\n${await k.kubectl(['logs', '-n', namespace, '-l', component('worker'), '--tail', '40'])}`;
  const waitForRun = (runId: string, statuses: Parameters<typeof waitForRunStatus>[2]) => waitForRunStatus(server, runId, statuses, 180_000);

  before(async () => {
    k = new ClusterTools(tools!, kubeconfig);
    const node = nodeAddress();
    nodeIp = node.ip;
    ({ server, containerUrl: podUrl } = await startServerReachableAt(hooks, node.ip));
    pool = await createPool(server);
    workspace = await createWorkspace(server, { poolId: pool.id, autoApply: true });
    await mkdir(hostDir, { recursive: true });
    hooks.after(() => rm(hostDir, { recursive: true, force: true }));
    // hostPath volumes are not allowed under the baseline or restricted standards.
    await k.createNamespace(hooks, namespace, 'privileged');
    const small = { requests: { cpu: '10m', memory: '64Mi' } };
    await k.install(hooks, 'agent-k8s', release, namespace, {
      image: { tag: clusterAgentImage.split(':')[1], pullPolicy: 'Never' },
      agent: { url: podUrl, token: pool.token, logLevel: 'debug' },
      persistence: { data: { path: `${hostDir}/data` }, cache: { path: `${hostDir}/cache` } },
      controller: { terminationGracePeriodSeconds: 30, resources: small },
      worker: {
        resources: small,
        extraVolumes: [{ name: 'engine', hostPath: { path: tofuBinary(), type: 'File' } }],
        extraVolumeMounts: [{ name: 'engine', mountPath: engineInPod, readOnly: true }],
        extraEnv: [{ name: 'OUTPOST_AGENT_ENGINE_PATH', value: engineInPod }],
      },
      task: { podTtl: '0s', image: { pullPolicy: 'Never' }, resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '1Gi' } } },
    });
    await waitUntil('the controller and the node\'s worker in the pool', async () => ((await onlineAgents()).length === 2 ? true : undefined), describeAll, 180_000);
  });

  const onlineAgents = () => onlineAgentNames(server, pool.id);

  test('the pool lists the controller and one worker, named after their pods', async () => {
    const pods = [...(await k.pods(namespace, component('controller'))), ...(await k.pods(namespace, component('worker')))].map((pod) => pod.metadata.name);
    assert.deepEqual((await onlineAgents()).sort(), pods.sort());
  });

  test('a run is planned and applied in job pods on the node; the pods are deleted', async () => {
    const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('helm')));
    const applied = await waitForRun(run.id, ['applied']);
    const planLog = await readLog(server, relatedId(applied, 'plan'));
    assert.match(planLog, /Outpost controller \S+: plan job \S+: creating pod outpost-job-/, planLog);
    assert.match(planLog, /Outpost agent agents-agent-k8s-worker-\S+: plan job \S+, driver kubernetes/, planLog);
    assert.match(await readLog(server, relatedId(applied, 'apply')), /Apply complete! Resources: 1 added/);
    await waitForCluster('the job pods deleted', 60_000, async () => ((await jobPods()).length === 0 ? true : undefined), describeAll);
  });

  test('a cancel reaches OpenTofu in the job pod', async (t) => {
    const { endpoint, run } = await startHeldPlan(t, server, workspace, nodeIp, describeAll);
    await runAction(server, run.id, 'cancel');
    await waitForLog(server, relatedId(run, 'plan'), tofuInterruptMessage, describeAll);
    endpoint.release();
    await waitForRun(run.id, ['canceled']);
    await waitForCluster('the job pod deleted', 60_000, async () => ((await jobPods()).length === 0 ? true : undefined), describeAll);
  });

  test('the controller pod killed mid-plan changes nothing for the job its worker runs', async (t) => {
    const { endpoint, run } = await startHeldPlan(t, server, workspace, nodeIp, describeAll, { autoApply: false });
    const [controller] = await k.pods(namespace, component('controller'));
    await k.kubectl(['delete', 'pod', '-n', namespace, controller!.metadata.name, '--grace-period=0', '--force']);
    endpoint.release();
    const planned = await waitForRun(run.id, ['planned']);
    const planLog = await readLog(server, relatedId(planned, 'plan'));
    assert.equal(planLog.match(/^Plan: 1 to add/gm)?.length, 1, planLog);
    assert.equal(planLog.match(/Outpost agent \S+: plan job/g)?.length, 1, planLog);
    await runAction(server, run.id, 'discard');
  });

  test('the worker pod killed mid-plan: the job is lost, queued again, and planned by the replacement worker', async (t) => {
    const { endpoint, run } = await startHeldPlan(t, server, workspace, nodeIp, describeAll, { autoApply: false });
    const [worker] = await k.pods(namespace, component('worker'));
    await k.kubectl(['delete', 'pod', '-n', namespace, worker!.metadata.name, '--grace-period=0', '--force']);
    // The replacement is a new pod, so a new agent: it removes the job pods
    // the old one held, whose jobs the control plane ends as lost; the plan
    // is queued again and runs once more, on the replacement.
    const readsBefore = endpoint.requests.length;
    await waitUntil('the plan to run again and read the held state', async () => (endpoint.requests.length > readsBefore ? true : undefined), describeAll, 180_000);
    endpoint.release();
    const planned = await waitForRun(run.id, ['planned']);
    const planLog = await readLog(server, relatedId(planned, 'plan'));
    const workers = [...planLog.matchAll(/Outpost agent (\S+): plan job/g)].map((match) => match[1]);
    assert.equal(workers.length, 2, planLog);
    assert.equal(workers[0], worker!.metadata.name, planLog);
    assert.notEqual(workers[1], worker!.metadata.name, planLog);
    assert.equal(planLog.match(/^Plan: 1 to add/gm)?.length, 1, planLog);
    await runAction(server, run.id, 'discard');
  });

  test('helm upgrade with a new token rolls every agent onto it; the old token can then be revoked', async () => {
    const rotation = await rotatePoolToken(server, pool);
    const before = new Set([...(await k.pods(namespace, `app.kubernetes.io/instance=${release}`))].map((pod) => pod.metadata.name));
    await k.helm(['upgrade', release, `${import.meta.dirname}/../../deploy/helm/agent-k8s`, '--namespace', namespace, '--reuse-values', '--set', `agent.token=${rotation.token}`, '--wait', '--timeout', '300s']);
    await waitForCluster('every agent pod replaced', 300_000, async () => {
      const now = await k.pods(namespace, `app.kubernetes.io/instance=${release},app.kubernetes.io/component in (controller,worker)`);
      return now.length === 2 && now.every((pod) => !before.has(pod.metadata.name) && pod.status.containerStatuses?.[0]?.ready) ? true : undefined;
    }, describeAll);
    await rotation.revokeOld();
    const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('rotated')));
    await waitForRun(run.id, ['applied']);
  });

  test('helm uninstall: the agents leave the pool; no pod or object of the release is left', async () => {
    await uninstallLeavesNothing(k, server, pool, namespace, release, describeAll);
  });
});
