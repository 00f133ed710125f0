// A VCS agent deployed with the agent-local chart on the test cluster, as
// docs/vcs.md ("Running a VCS agent") promises: the same chart, given the
// token of a pool of kind vcs and vcs.webhookListener.enabled. Its pod
// relays a plain git server's work for the control plane: it lists the
// repository's refs (the workspace finds its default branch), fetches a
// pushed commit that an agent of the runner pool then applies, and every
// connection the git server sees comes from the pod. A webhook posted to the
// chart's Service reaches the control plane through the pod and the
// control plane's answer comes back (a plain git provider takes no webhooks:
// 422 validation_failed). `helm uninstall` leaves nothing.
//
// The control plane and the runner agent run on this host, which is the
// cluster's only node; the pod reaches the server and the git server at the
// node's address. Skipped without a cluster at KUBECONFIG, except under
// CI=true, where that fails the suite.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { createPool, getWorkspace, listAgents, type Pool } from '../support/api-calls.ts';
import { onlineAgentNames, uninstallLeavesNothing } from '../support/chart-runs.ts';
import { startGitHttpServer, type GitHttpServer } from '../support/git-http-server.ts';
import { ClusterTools, waitForCluster } from '../support/helm-release.ts';
import { quickConfig } from '../support/job-control.ts';
import { nodeAddress } from '../support/kubernetes-agents.ts';
import { clusterAgentImage } from '../support/kubernetes-cluster.ts';
import { kubernetesClusterForTests } from '../support/kubernetes-tools.ts';
import { startRecordingForwarder, type RecordingForwarder } from '../support/recording-forwarder.ts';
import { setupCluster, suiteHooks, type Cluster } from '../support/test-cluster.ts';
import { createVcsProvider, linkRepository, waitForRunOfCommit, type CreatedProvider } from '../support/vcs-calls.ts';
import { waitUntil } from '../support/waits.ts';

const { tools, kubeconfig, skip } = kubernetesClusterForTests('run a VCS agent with the agent-local chart on the test cluster');
const suffix = randomBytes(3).toString('hex');
const namespace = `outpost-vcs-agent-${suffix}`;
const release = 'outpost-vcs';
const selector = `app.kubernetes.io/instance=${release}`;
const webhookService = `${release}-agent-local-vcs-webhooks`;
const password = `git-pass-${suffix}`;

interface ServiceSpec {
  spec: { type: string; clusterIP: string; ports: { name: string; port: number; targetPort: string }[] };
}

describe('a VCS agent installed with the agent-local chart', { skip, timeout: 900_000 }, () => {
  const hooks = suiteHooks();
  let k: ClusterTools;
  let cluster: Cluster;
  let vcsPool: Pool;
  let gitServer: GitHttpServer;
  let forwarder: RecordingForwarder;
  let provider: CreatedProvider;
  const agentLog = async () => (await k.run('kubectl', ['logs', '-n', namespace, '-l', selector, '--tail', '-1', '--prefix'])).stdout;
  const describeAll = async () => `${await k.kubectl(['get', 'pods,services,endpoints', '-n', namespace, '-o', 'wide'])}\n${(await agentLog()).slice(-6000)}\n--- server\n${cluster.server.output().slice(-4000)}`;
  const podIps = async () => (await k.kubectl(['get', 'pods', '-n', namespace, '-l', selector, '-o', 'jsonpath={.items[*].status.podIP}'])).split(/\s+/).filter((ip) => ip !== '');

  before(async () => {
    k = new ClusterTools(tools!, kubeconfig);
    const nodeIp = nodeAddress().ip;
    cluster = await setupCluster(hooks, 'sqlite', { listenHost: '0.0.0.0', serverEnv: { OUTPOST_VCS_INTERVAL: '200ms' } });
    const { server, workspace } = cluster;
    vcsPool = await createPool(server, `vcs-relay-${suffix}`, 'vcs');

    // The git server listens on loopback; pods reach it through the forwarder on the node's address.
    const root = await mkdtemp(path.join(os.tmpdir(), 'outpost-vcs-chart-git-'));
    hooks.after(() => rm(root, { recursive: true, force: true }));
    gitServer = await startGitHttpServer({ root: path.join(root, 'repos'), auth: { username: 'ci', password } });
    hooks.after(() => gitServer.close());
    await gitServer.createRepo('platform');
    await gitServer.pushFiles('platform', 'main', quickConfig('first'), 'First configuration');
    forwarder = await startRecordingForwarder(hooks, nodeIp, { host: '127.0.0.1', port: Number(new URL(gitServer.url).port) });

    provider = await createVcsProvider(server, { name: 'in-cluster', kind: 'git', username: 'ci', token: password, 'poll-interval': 1, 'agent-pool-id': vcsPool.id });
    await linkRepository(server, workspace.id, { 'vcs-repo': { identifier: `http://${nodeIp}:${forwarder.port}/platform.git`, 'vcs-provider-id': provider.id } });

    // No hostPath and no job: the VCS agent meets the restricted standard.
    await k.createNamespace(hooks, namespace, 'restricted');
    await k.install(hooks, 'agent-local', release, namespace, {
      image: { tag: clusterAgentImage.split(':')[1], pullPolicy: 'Never' },
      agent: { url: `http://${nodeIp}:${new URL(server.url).port}`, token: vcsPool.token, logLevel: 'debug' },
      vcs: { webhookListener: { enabled: true } },
      // It runs no jobs: it stops at once and needs little.
      shutdownMode: 'force',
      terminationGracePeriodSeconds: 10,
      resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    });
    await waitForCluster('the VCS agent ready (registered)', 180_000, async () => {
      const pods = await k.pods(namespace, selector);
      return pods.length === 1 && pods[0]!.status.containerStatuses?.[0]?.ready === true ? pods : undefined;
    }, describeAll);
  });

  test('the pod registers in the vcs pool under its name and lists the refs: the workspace finds its default branch', async () => {
    const pods = (await k.pods(namespace, selector)).map((pod) => pod.metadata.name);
    await waitUntil('the VCS agent online in its pool', async () => ((await onlineAgentNames(cluster.server, vcsPool.id)).length === 1 ? true : undefined), describeAll);
    assert.deepEqual(await onlineAgentNames(cluster.server, vcsPool.id), pods);
    const workspace = await waitUntil(
      'the default branch, read through the pod',
      async () => {
        const found = await getWorkspace(cluster.server, cluster.workspace.id);
        return found.attributes['vcs-repo']?.branch === 'main' ? found : undefined;
      },
      describeAll,
      120_000,
    );
    assert.equal(workspace.attributes['vcs-status'], null);
    assert.match(await agentLog(), /relaying version control work for this pool/);
  });

  test('a pushed commit is fetched by the pod and applied by the runner pool\'s agent; only the pod talked to the git server', async () => {
    const sha = await gitServer.pushFiles('platform', 'main', quickConfig('second'), 'Second configuration');
    const run = await waitForRunOfCommit(cluster.server, cluster.workspace.id, sha, { timeoutMs: 120_000 });
    assert.equal(run.attributes['ingress-attributes']?.['commit-message'], 'Second configuration');
    await cluster.waitForRun(run.id, ['applied'], 180_000);

    const log = await agentLog();
    assert.match(log, /VCS task done/);
    assert.match(log, /"kind":"fetch"/);
    assert.ok(!log.includes(password), 'the provider\'s password is not in the agent\'s log');
    // Every connection to the git server came through the forwarder, from the pod's address.
    const ips = await podIps();
    assert.ok(forwarder.peers.length > 0, 'the git server was reached');
    assert.deepEqual([...new Set(forwarder.peers)], ips, `connections came from ${[...new Set(forwarder.peers)].join(', ')}, the pod is ${ips.join(', ')}`);
    assert.ok(gitServer.requests.some((request) => request.query === 'service=git-upload-pack' && request.user === 'ci'), 'the pod authenticated as the provider\'s user');
    assert.ok(gitServer.requests.some((request) => request.method === 'POST' && request.path === '/platform.git/git-upload-pack'), 'the pod fetched');
  });

  test('a webhook posted to the chart\'s Service reaches the control plane through the pod, and its answer comes back', async () => {
    const service = JSON.parse(await k.kubectl(['get', 'service', webhookService, '-n', namespace, '-o', 'json'])) as ServiceSpec;
    assert.equal(service.spec.type, 'ClusterIP');
    assert.deepEqual(service.spec.ports.map((port) => [port.name, port.port, port.targetPort]), [['vcs-webhooks', 8088, 'vcs-webhooks']]);
    // kube-proxy routes the cluster IP on the node, which is this host.
    const url = `http://${service.spec.clusterIP}:8088/webhooks/${provider.id}`;
    const answer = await waitForCluster('an answer from the webhook Service', 60_000, async () => {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-gitea-event': 'push' },
          body: JSON.stringify({ ref: 'refs/heads/main' }),
          signal: AbortSignal.timeout(10_000),
        });
        return { status: response.status, body: (await response.json()) as { errors?: { status: string; code: string; detail: string }[] } };
      } catch {
        // Not routed yet (kube-proxy follows the endpoints within a moment).
        return undefined;
      }
    }, describeAll);
    // The control plane's refusal, relayed: a plain git provider is polled and takes no webhooks.
    assert.equal(answer.status, 422, JSON.stringify(answer.body));
    assert.equal(answer.body.errors?.[0]?.code, 'validation_failed', JSON.stringify(answer.body));
    assert.match(answer.body.errors?.[0]?.detail ?? '', /plain git provider has no webhooks/);
    assert.match(await agentLog(), /a forwarded webhook was refused/);
  });

  test('helm uninstall: the VCS agent leaves its pool; nothing of the release is left, its Service included', async () => {
    await uninstallLeavesNothing(k, cluster.server, vcsPool, namespace, release, describeAll);
    assert.deepEqual((await listAgents(cluster.server, vcsPool.id)).filter((agent) => agent.attributes.status !== 'offline'), []);
    assert.equal((await k.run('kubectl', ['get', 'service', webhookService, '-n', namespace])).code, 1);
  });
});
