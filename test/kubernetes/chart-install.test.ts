// The Helm charts against a real cluster (scripts/kubernetes/start-cluster.sh,
// with the agent image imported):
//
// - every object every ci/ profile renders is accepted by the API server
//   (a server-side dry run, so unknown or misplaced fields fail), and the
//   job pod template of agent-k8s passes the `restricted` Pod Security
//   Standard;
// - agent-local installs into a namespace that enforces `restricted`, its
//   agents run and stay not ready while the control plane cannot be
//   reached (without being restarted), a changed token Secret changes their
//   checksum annotation on `helm upgrade` (Helm's lookup), and `helm
//   uninstall` leaves nothing;
// - agent-k8s's workers prepare their node directories with an init
//   container that has only the CHOWN and FOWNER capabilities, and
//   `helm uninstall` leaves nothing, cluster-scoped objects included.
//
// Skipped without a cluster at KUBECONFIG (or without helm and kubectl),
// except under CI=true, where that fails the suite.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dump, load, loadAll } from 'js-yaml';
import { chartsDir, ClusterTools, waitForCluster as waitFor } from '../support/helm-release.ts';
import { kubernetesClusterForTests } from '../support/kubernetes-tools.ts';

const { tools, kubeconfig, skip } = kubernetesClusterForTests('install the Helm charts on the test cluster');
const suffix = randomBytes(3).toString('hex');

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

describe('the Helm charts on a cluster', { skip, timeout: 600_000 }, () => {
  let k: ClusterTools;
  before(() => {
    k = new ClusterTools(tools!, kubeconfig);
  });

  test('every object of every profile passes a server-side dry run; the job pod template meets `restricted`', async (t) => {
    const plain = `outpost-charts-${suffix}-dry`;
    const restricted = `outpost-charts-${suffix}-pss`;
    await k.createNamespace(t, plain, 'privileged');
    await k.createNamespace(t, restricted, 'restricted');
    for (const chart of ['agent-local', 'agent-k8s']) {
      const profiles = readdirSync(path.join(chartsDir, chart, 'ci')).filter((name) => name.endsWith('.yaml') && !name.startsWith('fail-'));
      for (const profile of profiles) {
        const rendered = await k.helm(['template', 'dry', path.join(chartsDir, chart), '--namespace', plain, '--kube-version', '1.33.0', '--values', path.join(chartsDir, chart, 'ci', profile)]);
        const manifests = loadAll(rendered).filter((doc): doc is Manifest => doc !== null && typeof doc === 'object');
        // The Prometheus Operator's CRDs are not installed here.
        const checked = manifests.filter((manifest) => manifest.kind !== 'ServiceMonitor');
        const outcome = await k.run('kubectl', ['apply', '--dry-run=server', '--validate=strict', '-n', plain, '-f', '-'], checked.map((manifest) => dump(manifest)).join('---\n'));
        assert.equal(outcome.code, 0, `${chart} ${profile}: the API server refuses:\n${outcome.stderr}`);

        const template = manifests.find((manifest) => manifest.kind === 'ConfigMap' && manifest.metadata.name.endsWith('-pod-template'))?.data?.['pod-template.yaml'];
        if (template === undefined) continue;
        const pod = load(template) as Manifest & { spec: { serviceAccountName?: string; priorityClassName?: string } };
        pod.metadata.name = 'job-template-check';
        // Admission wants the PriorityClass to exist; the profiles name ones of their own.
        delete pod.spec.priorityClassName;
        const checkedIn = profile === 'default-values.yaml' ? restricted : plain;
        // Admission looks the service account up: give it one to find.
        const account = pod.spec.serviceAccountName ?? 'default';
        await k.run('kubectl', ['create', 'serviceaccount', account, '-n', checkedIn]);
        const podOutcome = await k.run('kubectl', ['create', '--dry-run=server', '--validate=strict', '-n', checkedIn, '-f', '-'], dump(pod));
        assert.equal(podOutcome.code, 0, `${chart} ${profile}: the job pod template is refused${checkedIn === restricted ? ' (Pod Security Standard restricted)' : ''}:\n${podOutcome.stderr}`);
      }
    }
  });

  test('agent-local: agents run under `restricted`, stay unready without a control plane, roll on a new token, and uninstall leaves nothing', async (t) => {
    const namespace = `outpost-charts-${suffix}-local`;
    const release = 'local';
    await k.createNamespace(t, namespace, 'restricted');
    await k.kubectl(['create', 'secret', 'generic', 'pool-token', '-n', namespace, '--from-literal=token=opp_not-a-real-token']);
    await k.helm([
      'install', release, path.join(chartsDir, 'agent-local'), '--namespace', namespace,
      // Nothing listens there: the agents keep retrying to register.
      '--set', 'agent.url=http://127.0.0.1:9',
      '--set', 'agent.tokenExistingSecret.name=pool-token',
      '--set', 'replicaCount=2',
      // A SIGTERM that reaches the agent before it set its handlers is lost
      // (it is PID 1): keep the wait for SIGKILL short.
      '--set', 'shutdownMode=grace',
      '--set', 'terminationGracePeriodSeconds=30',
      '--set', 'resources.requests.cpu=50m',
      '--set', 'resources.requests.memory=128Mi',
    ]);
    const selector = `app.kubernetes.io/instance=${release}`;
    const describePods = () => k.kubectl(['describe', 'pods', '-n', namespace, '-l', selector]);
    const running = await waitFor('two agents running', 180_000, async () => {
      const found = await k.pods(namespace, selector);
      return found.length === 2 && found.every((pod) => pod.status.phase === 'Running' && pod.status.containerStatuses?.[0]?.started === true) ? found : undefined;
    }, describePods);
    // Past three liveness periods: /healthz answers (no restart) while /readyz does not.
    await sleep(35_000);
    for (const pod of await k.pods(namespace, selector)) {
      const agent = pod.status.containerStatuses?.[0];
      assert.equal(agent?.restartCount, 0, `${pod.metadata.name} was restarted:\n${await describePods()}`);
      assert.equal(agent?.ready, false, `${pod.metadata.name} is ready without a control plane`);
    }
    const log = await k.kubectl(['logs', '-n', namespace, running[0]?.metadata.name ?? '']);
    assert.match(log, /the control plane cannot be reached/);
    assert.match(log, /"driver":"local"/);
    assert.match(log, /health and metrics listening/);

    // The checksum is that of the Secret's value as the API holds it (base64), read with lookup.
    const checksum = async () => (JSON.parse(await k.kubectl(['get', 'deployment', `${release}-agent-local`, '-n', namespace, '-o', 'json'])) as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations['checksum/agent-token'];
    const base64Sha = (value: string) => createHash('sha256').update(Buffer.from(value).toString('base64')).digest('hex');
    assert.equal(await checksum(), base64Sha('opp_not-a-real-token'));
    await k.kubectl(['create', 'secret', 'generic', 'pool-token', '-n', namespace, '--from-literal=token=opp_rotated-token', '--dry-run=client', '-o', 'yaml'])
      .then((manifest) => k.kubectl(['apply', '-n', namespace, '-f', '-'], manifest));
    await k.helm(['upgrade', release, path.join(chartsDir, 'agent-local'), '--namespace', namespace, '--reuse-values']);
    assert.equal(await checksum(), base64Sha('opp_rotated-token'), 'helm upgrade after the Secret changed rolls the agents');
    // The rollout starts an agent with the new token (it never becomes ready here, so the rollout stops there).
    await waitFor('an agent with the new token', 120_000, async () => {
      for (const pod of await k.pods(namespace, selector)) {
        const annotations = (JSON.parse(await k.kubectl(['get', 'pod', pod.metadata.name, '-n', namespace, '-o', 'json'])) as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
        if (annotations['checksum/agent-token'] !== base64Sha('opp_rotated-token') || pod.status.containerStatuses?.[0]?.started !== true) continue;
        if ((await k.kubectl(['logs', '-n', namespace, pod.metadata.name])).includes('health and metrics listening')) return true;
      }
      return undefined;
    }, describePods);

    await k.helm(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '120s']);
    await waitFor('the agents gone', 120_000, async () => ((await k.pods(namespace, selector)).length === 0 ? true : undefined), describePods);
    assert.equal(await k.leftovers(namespace, release), '', 'objects left after helm uninstall');
  });

  test('agent-k8s: the workers prepare the node directories as root with CHOWN and FOWNER alone; uninstall leaves nothing', async (t) => {
    const namespace = `outpost-charts-${suffix}-k8s`;
    const release = 'k8s';
    const hostDir = `/tmp/outpost-charts-${suffix}`;
    await k.createNamespace(t, namespace, 'privileged');
    t.after(() => rm(hostDir, { recursive: true, force: true }));
    await k.helm([
      'install', release, path.join(chartsDir, 'agent-k8s'), '--namespace', namespace,
      '--set', 'agent.url=http://127.0.0.1:9',
      '--set', 'agent.token=opp_not-a-real-token',
      '--set', `persistence.data.path=${hostDir}/data`,
      '--set', `persistence.cache.path=${hostDir}/cache`,
      '--set', 'controller.resources.requests.cpu=10m',
      '--set', 'worker.resources.requests.cpu=10m',
    ]);
    const selector = `app.kubernetes.io/instance=${release},app.kubernetes.io/component=worker`;
    const describePods = () => k.kubectl(['describe', 'pods', '-n', namespace, '-l', selector]);
    const init = await waitFor('the worker\'s init container to finish', 180_000, async () => {
      const worker = (await k.pods(namespace, selector))[0];
      return worker?.status.initContainerStatuses?.[0]?.state.terminated;
    }, describePods);
    assert.equal(init.exitCode, 0, `prepare-directories failed (${init.reason ?? ''}):\n${await describePods()}`);
    // The cluster's node is this machine: the directories are here.
    if (existsSync(`${hostDir}/data`)) {
      for (const dir of [`${hostDir}/data`, `${hostDir}/cache`]) {
        const info = statSync(dir);
        assert.deepEqual([info.uid, info.gid, info.mode & 0o7777], [1000, 1000, 0o775], `${dir}: owner and mode`);
      }
    }

    await k.helm(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '120s']);
    await waitFor('the workers and controllers gone', 120_000, async () => ((await k.pods(namespace, `app.kubernetes.io/instance=${release}`)).length === 0 ? true : undefined), describePods);
    assert.equal(await k.leftovers(namespace, release), '', 'objects left after helm uninstall');
  });
});

