// `outpost launcher` with OUTPOST_LAUNCHER_TARGET=kubernetes on the test
// cluster: a queued run is delivered to the launcher, which creates one Job
// per job (plan, then apply) reading the pool token from a Secret it never
// sees; each Job's agent runs its job with the real OpenTofu (an engine
// file on the node, through OUTPOST_LAUNCHER_POD_TEMPLATE) and the run is
// applied.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { PoolWebhook, WebhookDelivery } from '../../src/protocol/api-resources.ts';
import { apiCall, createPool, createRun, createWorkspace, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { startServerReachableAt } from '../support/container-reachable-server.ts';
import { ClusterTools } from '../support/helm-release.ts';
import { quickConfig } from '../support/job-control.ts';
import { startLauncher } from '../support/launcher.ts';
import { clusterAgentImage } from '../support/kubernetes-cluster.ts';
import { nodeAddress } from '../support/kubernetes-agents.ts';
import { kubernetesClusterForTests } from '../support/kubernetes-tools.ts';
import { tofuBinary } from '../support/toolchain.ts';
import { waitForRunStatus } from '../support/waits.ts';

const { tools, kubeconfig, skip } = kubernetesClusterForTests('run agents as Jobs started by outpost launcher on the test cluster');
const namespace = `outpost-launcher-${randomBytes(3).toString('hex')}`;
const engineInPod = '/opt/outpost-engine/tofu';

describe('outpost launcher with the kubernetes target', { skip, timeout: 600_000 }, () => {
  test('queue a run → webhook → a Job per job, token from the Secret, pod template merged → applied', async (t) => {
    const k = new ClusterTools(tools!, kubeconfig);
    const { server } = await startServerReachableAt(t, nodeAddress().ip, { OUTPOST_WEBHOOK_INTERVAL: '200ms' });
    const pool = await createPool(server);
    const workspace = await createWorkspace(server, { poolId: pool.id });
    // hostPath volumes (the engine) are not allowed under the baseline or restricted standards.
    await k.createNamespace(t, namespace, 'privileged');
    await k.kubectl(['create', 'secret', 'generic', 'pool-token', '-n', namespace, `--from-literal=token=${pool.token}`]);
    const created = await apiCall<{ data: PoolWebhook }>(server, 'PUT', `/api/v2/agent-pools/${pool.id}/webhook`, { data: { type: 'pool-webhooks', attributes: { url: 'http://127.0.0.1:9/', enabled: false } } }, 200);

    const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-launcher-k8s-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const template = path.join(dir, 'pod.yaml');
    await writeFile(
      template,
      [
        'volumes:',
        '  - name: engine',
        `    hostPath: { path: ${JSON.stringify(tofuBinary())}, type: File }`,
        'containers:',
        '  - name: agent',
        '    env:',
        `      - { name: OUTPOST_AGENT_ENGINE_PATH, value: ${engineInPod} }`,
        '    volumeMounts:',
        `      - { name: engine, mountPath: ${engineInPod}, readOnly: true }`,
        '',
      ].join('\n'),
    );
    const launcher = await startLauncher(t, {
      KUBECONFIG: kubeconfig!,
      OUTPOST_LAUNCHER_TARGET: 'kubernetes',
      OUTPOST_LAUNCHER_NAMESPACE: namespace,
      OUTPOST_LAUNCHER_TOKEN_SECRET: 'pool-token',
      OUTPOST_LAUNCHER_SIGNING_SECRET: created.data.attributes['signing-secret']!,
      OUTPOST_LAUNCHER_IMAGE: clusterAgentImage,
      OUTPOST_LAUNCHER_POD_TEMPLATE: template,
      OUTPOST_LAUNCHER_CPUS: '0.5',
      OUTPOST_LAUNCHER_MEMORY: '512m',
    });
    const launcherUrl = launcher.url;
    await apiCall(server, 'PUT', `/api/v2/agent-pools/${pool.id}/webhook`, { data: { type: 'pool-webhooks', attributes: { url: `${launcherUrl}/webhook`, enabled: true } } }, 200);

    const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('launched-in-kubernetes')));
    const describeAll = async () =>
      `--- launcher\n${launcher.log()}\n--- jobs\n${await k.kubectl(['get', 'jobs,pods', '-n', namespace, '-o', 'wide'])}\n--- pod logs\n${await k.kubectl(['logs', '-n', namespace, '-l', 'app.kubernetes.io/managed-by=outpost-launcher', '--tail', '30', '--prefix']).catch(() => '')}`;
    await waitForRunStatus(server, run.id, ['applied'], 240_000).catch(async (error: Error) => assert.fail(`${error.message}\n${await describeAll()}`));
    assert.match(await readLog(server, relatedId(run, 'apply')), /Apply complete!/);

    const jobs = JSON.parse(await k.kubectl(['get', 'jobs', '-n', namespace, '-o', 'json'])) as {
      items: { metadata: { name: string; labels: Record<string, string> }; spec: { backoffLimit: number; template: { spec: { containers: { env: { name: string; valueFrom?: unknown; value?: string }[]; resources: unknown }[] } } } }[];
    };
    assert.equal(jobs.items.length, 2, await describeAll());
    for (const job of jobs.items) {
      assert.equal(job.spec.backoffLimit, 0);
      assert.equal(job.metadata.labels['outpost.dev/pool'], pool.id);
      const env = job.spec.template.spec.containers[0]!.env;
      assert.deepEqual(env.find((e) => e.name === 'OUTPOST_AGENT_TOKEN')?.valueFrom, { secretKeyRef: { name: 'pool-token', key: 'token' } }, 'the token comes from the Secret, never in the Job');
      assert.equal(env.find((e) => e.name === 'OUTPOST_AGENT_ENGINE_PATH')?.value, engineInPod, 'the pod template was merged');
    }
    assert.ok(!JSON.stringify(jobs).includes(pool.token));

    // One delivery per job, each answered by a started Job.
    const deliveries = (await apiCall<{ data: WebhookDelivery[] }>(server, 'GET', `/api/v2/agent-pools/${pool.id}/webhook-deliveries`, undefined, 200)).data;
    assert.deepEqual(deliveries.map((d) => d.attributes['response-status']), [202, 202], JSON.stringify(deliveries));
  });
});
