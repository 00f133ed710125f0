// The agent-k8s chart renders what it should: secure controller, worker and
// job pods in every profile, the controller's and the worker's environment
// (the contract with the kubernetes driver's settings), the job pod template
// the controller reads, every option reaching the agents and the job pods,
// the RBAC verbs, the PodDisruptionBudgets, the token's checksum, the stop
// timeouts derived per shutdown mode, the cache volumes, the NetworkPolicy of
// the job pods and the metrics annotations or ServiceMonitor.
//
// Needs helm (scripts/kubernetes/build-tools.sh): skipped without it, except
// under CI=true where its absence fails the suite.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  defaultAgentEnv,
  assertMetadataAllowed, assertMetadataBlocked, assertSecurePod, assertShutdown, container, envOf, mount,
  namespace, profilesOf, profileToken, release, render, sha256, skipWithoutHelm, volume, type Rendered,
} from '../support/chart-render.ts';

describe('agent-k8s', { skip: skipWithoutHelm }, () => {
  const chart = 'agent-k8s';
  const fullname = `${release}-agent-k8s`;
  const jobLabels = { 'app.kubernetes.io/name': 'agent-k8s', 'app.kubernetes.io/instance': release, 'app.kubernetes.io/component': 'job', 'outpost.dev/instance': fullname };
  let defaults: Rendered;
  before(async () => {
    defaults = await render(chart, 'default-values.yaml');
  });

  const controllerOf = (rendered: Rendered) => rendered.podTemplate('Deployment', `${fullname}-controller`);
  const workerOf = (rendered: Rendered) => rendered.podTemplate('DaemonSet', `${fullname}-worker`);

  test('secure defaults on the controller, worker and job pods of every profile; job pods get no token', async () => {
    for (const profile of profilesOf(chart).good) {
      const rendered = await render(chart, profile);
      const name = (rendered.find('Deployment')?.metadata.name ?? '').replace(/-controller$/, '');
      const controller = rendered.podTemplate('Deployment').spec;
      const worker = rendered.podTemplate('DaemonSet').spec;
      const job = rendered.jobPod().spec;
      assertSecurePod(controller, ['controller'], `${profile} controller`);
      assertSecurePod(worker, ['worker'], `${profile} worker`);
      assertSecurePod(job, ['job'], `${profile} job pod`);
      assert.equal(controller.automountServiceAccountToken, true, `${profile}: the controller calls the API`);
      assert.equal(worker.automountServiceAccountToken, true, `${profile}: the worker calls the API`);
      assert.equal(job.automountServiceAccountToken, false, `${profile}: job pods get no token`);
      assert.equal(controller.initContainers, undefined, `${profile}: the controller runs nothing as root`);
      const jobAccount = rendered.find('ServiceAccount', job.serviceAccountName);
      if (profile !== 'rbac-off-values.yaml') {
        assert.equal(job.serviceAccountName, `${name}-job`, `${profile}: a service account of the job pods' own`);
        assert.equal(jobAccount?.automountServiceAccountToken, false, `${profile}: the job service account mounts no token`);
        for (const binding of rendered.all('RoleBinding').concat(rendered.all('ClusterRoleBinding'))) {
          assert.ok(!binding.subjects?.some((subject) => subject.name === job.serviceAccountName), `${profile}: the job service account is bound to ${binding.metadata.name}`);
        }
      }
    }
  });

  test('the controller\'s settings: controller mode, the pod template, the node directories, the timeouts', () => {
    const controller = container(controllerOf(defaults).spec, 'controller');
    assert.equal(controller.image, 'outpost/agent:0.1.0');
    assert.deepEqual(Object.fromEntries(envOf(controller)), {
      OUTPOST_AGENT_TOKEN: `secret:${fullname}/token`,
      OUTPOST_AGENT_NAME: 'field:metadata.name',
      OUTPOST_AGENT_DRIVER: 'kubernetes',
      OUTPOST_AGENT_KUBERNETES_MODE: 'controller',
      OUTPOST_AGENT_KUBERNETES_NAMESPACE: 'field:metadata.namespace',
      OUTPOST_AGENT_KUBERNETES_INSTANCE: fullname,
      OUTPOST_AGENT_DATA_DIR: '/var/lib/outpost-controller',
      OUTPOST_AGENT_CACHE_DIR: '/var/lib/outpost-controller/cache',
      OUTPOST_AGENT_LOG_FORMAT: 'json',
      OUTPOST_AGENT_LOG_LEVEL: 'info',
      OUTPOST_AGENT_HEALTH_PORT: '9090',
      OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'grace',
      OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '60s',
      OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT: '80',
      OUTPOST_AGENT_ENGINE_BUILD: 'off',
      HOME: '/tmp',
      OUTPOST_AGENT_CONCURRENCY: '10',
      OUTPOST_AGENT_KUBERNETES_POD_TEMPLATE: '/etc/outpost/pod-template.yaml',
      OUTPOST_AGENT_KUBERNETES_NODE_DATA_DIR: '/var/lib/outpost-agent',
      OUTPOST_AGENT_KUBERNETES_NODE_CACHE_DIR: '/var/cache/outpost-agent',
      OUTPOST_AGENT_KUBERNETES_SCHEDULING_TIMEOUT: '120s',
      OUTPOST_AGENT_KUBERNETES_POD_TTL: '60s',
    });
    assert.equal(mount(controller, 'pod-template').mountPath, '/etc/outpost');
    assert.deepEqual(volume(controllerOf(defaults).spec, 'pod-template').configMap, { name: `${fullname}-pod-template` });
    assert.equal(controller.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(controller.livenessProbe?.httpGet?.path, '/healthz');
  });

  test('the worker\'s settings: worker mode, its node, the startup timeout, the node directories', () => {
    const spec = workerOf(defaults).spec;
    const worker = container(spec, 'worker');
    assert.deepEqual(Object.fromEntries(envOf(worker)), {
      OUTPOST_AGENT_TOKEN: `secret:${fullname}/token`,
      OUTPOST_AGENT_NAME: 'field:metadata.name',
      OUTPOST_AGENT_DRIVER: 'kubernetes',
      OUTPOST_AGENT_KUBERNETES_MODE: 'worker',
      OUTPOST_AGENT_KUBERNETES_NAMESPACE: 'field:metadata.namespace',
      OUTPOST_AGENT_KUBERNETES_INSTANCE: fullname,
      ...defaultAgentEnv,
      OUTPOST_AGENT_CONCURRENCY: '4',
      OUTPOST_AGENT_KUBERNETES_NODE_NAME: 'field:spec.nodeName',
      OUTPOST_AGENT_KUBERNETES_STARTUP_TIMEOUT: '180s',
      OUTPOST_AGENT_MEMORY_LIMIT_MB: '4096',
      OUTPOST_AGENT_KUBERNETES_POD_TTL: '60s',
    });
    // The node's directories, at the same path inside the worker as on the node.
    assert.deepEqual(volume(spec, 'outpost-data').hostPath, { path: '/var/lib/outpost-agent', type: 'DirectoryOrCreate' });
    assert.deepEqual(volume(spec, 'outpost-cache').hostPath, { path: '/var/cache/outpost-agent', type: 'DirectoryOrCreate' });
    assert.equal(mount(worker, 'outpost-data').mountPath, '/var/lib/outpost-agent');
    assert.equal(mount(worker, 'outpost-cache').mountPath, '/var/cache/outpost-agent');
    const init = spec.initContainers?.[0];
    assert.ok(init, 'an init container prepares the node directories');
    assert.deepEqual(init.command?.slice(3), ['prepare-directories', '/var/lib/outpost-agent', '/var/cache/outpost-agent']);
    assert.match(init.command?.[2] ?? '', /mkdir -p "\$dir"\n\s*chown 1000:1000 "\$dir"\n\s*chmod 0775 "\$dir"/);
  });

  test('the job pod template: its labels, the job container, eviction-safe, no node directories of its own', () => {
    const pod = defaults.jobPod();
    assert.equal(pod.apiVersion, 'v1');
    assert.equal(pod.kind, 'Pod');
    assert.deepEqual(pod.metadata.labels, jobLabels);
    assert.equal(pod.metadata.labels?.['outpost.dev/instance'], envOf(container(controllerOf(defaults).spec, 'controller')).get('OUTPOST_AGENT_KUBERNETES_INSTANCE'));
    assert.deepEqual(pod.metadata.annotations, { 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false', 'karpenter.sh/do-not-disrupt': 'true' });
    assert.equal(pod.spec.restartPolicy, 'Never');
    assert.equal(pod.spec.terminationGracePeriodSeconds, 300);
    assert.equal(pod.spec.serviceAccountName, `${fullname}-job`);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['job']);
    const job = container(pod.spec, 'job');
    assert.equal(job.image, 'outpost/agent:0.1.0', 'the agent image by default');
    assert.deepEqual(job.resources, { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '4Gi' } });
    assert.deepEqual(Object.fromEntries(envOf(job)), { HOME: '/tmp' });
    // The node directories are the controller's to add (volumes outpost-*, which it replaces).
    assert.deepEqual(pod.spec.volumes, [{ name: 'tmp', emptyDir: {} }]);
    assert.deepEqual(job.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
    assert.equal(defaults.get('ServiceAccount', `${fullname}-job`).automountServiceAccountToken, false);
  });

  test('a custom job pod: image, resources, placement (falling back to the worker\'s), labels, sidecars, volumes', async () => {
    const rendered = await render(chart, 'job-pod-values.yaml');
    const pod = rendered.jobPod();
    const job = container(pod.spec, 'job');
    assert.equal(job.image, 'registry.example.com/platform/outpost-job:2025.1');
    assert.equal(job.imagePullPolicy, 'Always');
    assert.deepEqual(job.resources, { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '8Gi', 'ephemeral-storage': '20Gi' } });
    assert.deepEqual(pod.spec.nodeSelector, { 'outpost.dev/pool': 'jobs' }, 'the worker\'s nodeSelector');
    assert.deepEqual(pod.spec.tolerations, [{ key: 'outpost.dev/jobs', operator: 'Exists', effect: 'NoSchedule' }], 'the worker\'s tolerations');
    assert.ok(pod.spec.affinity);
    assert.equal(pod.spec.topologySpreadConstraints?.length, 1);
    assert.equal(pod.spec.priorityClassName, 'outpost-jobs');
    assert.equal(pod.spec.terminationGracePeriodSeconds, 600);
    assert.deepEqual(pod.spec.imagePullSecrets, [{ name: 'job-registry' }]);
    assert.deepEqual({ ...pod.metadata.labels }, { ...jobLabels, team: 'platform' });
    assert.deepEqual(pod.metadata.annotations, { 'example.com/cost-center': 'infra', 'karpenter.sh/do-not-disrupt': 'true' });
    assert.equal(envOf(job).get('TF_LOG'), 'warn');
    assert.deepEqual(job.envFrom, [{ secretRef: { name: 'cloud-credentials' } }]);
    assert.equal(mount(job, 'git-ssh').mountPath, '/etc/git-ssh');
    assert.ok(volume(pod.spec, 'git-ssh').secret);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['job', 'egress-proxy']);
    assert.equal(rendered.get('ServiceAccount', `${fullname}-job`).metadata.annotations?.['iam.gke.io/gcp-service-account'], 'outpost-jobs@example.iam.gserviceaccount.com');
    for (const rendering of [rendered, defaults]) {
      const worker = envOf(container(workerOf(rendering).spec, 'worker'));
      assert.equal(worker.get('OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT'), rendering === rendered ? '75' : '80');
    }
    // A change of the template restarts the controllers, which read it at start.
    assert.notEqual(controllerOf(rendered).metadata.annotations?.['checksum/pod-template'], controllerOf(defaults).metadata.annotations?.['checksum/pod-template']);
  });

  test('every option reaches the agents and the job pods: URL, proxy, CA, mirrors, extra env, image', async () => {
    const rendered = await render(chart, 'options-values.yaml');
    const image = 'registry.example.com/outpost/agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
    for (const [name, spec] of [['controller', rendered.podTemplate('Deployment', 'outpost-controller').spec], ['worker', rendered.podTemplate('DaemonSet', 'outpost-worker').spec]] as const) {
      const agent = container(spec, name);
      const env = envOf(agent);
      assert.equal(agent.image, image);
      assert.equal(env.get('OUTPOST_URL'), 'https://outpost.example.com');
      assert.equal(env.get('OUTPOST_AGENT_KUBERNETES_INSTANCE'), 'outpost');
      assert.equal(env.get('OUTPOST_AGENT_HEALTH_PORT'), '9191');
      assert.equal(agent.ports?.[0]?.containerPort, 9191);
      assert.equal(env.get('OUTPOST_AGENT_BINARY_MIRROR'), 'https://mirror.example.com/engines');
      assert.equal(env.get('OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS'), 'secret:outpost/provider-network-mirrors');
      assert.equal(env.get('OUTPOST_AGENT_CA_CERT'), '/etc/outpost-ca/ca.crt');
      assert.equal(env.get('NODE_EXTRA_CA_CERTS'), '/etc/outpost-ca/ca.crt');
      assert.deepEqual(volume(spec, 'ca-bundle').secret, { secretName: 'corporate-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] });
      assert.equal(env.get('HTTPS_PROXY'), 'http://proxy.example.com:3128');
      assert.equal(env.get('NO_PROXY'), '.cluster.local,.svc,10.96.0.1');
      assert.equal(env.get('OUTPOST_AGENT_PLAN_WORKDIR_TTL'), '30m', 'agent.extraEnv reaches both');
      assert.equal(env.has('OUTPOST_AGENT_DOWNLOAD_TIMEOUT'), name === 'controller', 'controller.extraEnv reaches the controller alone');
      assert.deepEqual(spec.imagePullSecrets, [{ name: 'registry-credentials' }]);
    }
    const job = rendered.jobPod();
    assert.equal(container(job.spec, 'job').image, image, 'the job image follows the agent image');
    assert.deepEqual(Object.fromEntries(envOf(container(job.spec, 'job'))), {
      HTTPS_PROXY: 'http://proxy.example.com:3128',
      HTTP_PROXY: 'http://proxy.example.com:3128',
      NO_PROXY: '.cluster.local,.svc,10.96.0.1',
      NODE_EXTRA_CA_CERTS: '/etc/outpost-ca/ca.crt',
      HOME: '/tmp',
    });
    assert.equal(job.metadata.labels?.team, 'platform', 'commonLabels reach the job pods');
    assert.deepEqual(job.spec.imagePullSecrets, [{ name: 'registry-credentials' }]);
    assert.equal(rendered.get('DaemonSet').spec?.revisionHistoryLimit, 3);
  });

  test('RBAC: exactly the verbs the controller and the worker need, extra rules appended, none without rbac.create', async () => {
    const rules = (rendered: Rendered, kind: string, name: string) => rendered.get(kind, name).rules;
    assert.deepEqual(rules(defaults, 'Role', `${fullname}-controller`), [
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'delete', 'patch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    ]);
    assert.deepEqual(rules(defaults, 'Role', `${fullname}-worker`), [
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['delete'] },
    ]);
    const nodesRole = `${namespace}-${fullname}-worker-nodes`;
    assert.deepEqual(rules(defaults, 'ClusterRole', nodesRole), [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
    for (const [kind, name, account] of [['RoleBinding', `${fullname}-controller`, `${fullname}-controller`], ['RoleBinding', `${fullname}-worker`, `${fullname}-worker`], ['ClusterRoleBinding', nodesRole, `${fullname}-worker`]] as const) {
      const binding = defaults.get(kind, name);
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: kind === 'RoleBinding' ? 'Role' : 'ClusterRole', name });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: account, namespace }]);
    }
    assert.equal(defaults.all('Role').length + defaults.all('ClusterRole').length, 3);
    assert.equal(controllerOf(defaults).spec.serviceAccountName, `${fullname}-controller`);
    assert.equal(workerOf(defaults).spec.serviceAccountName, `${fullname}-worker`);

    const extended = await render(chart, 'options-values.yaml');
    assert.deepEqual(rules(extended, 'Role', 'outpost-controller')?.at(-1), { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] });
    assert.deepEqual(rules(extended, 'ClusterRole', `${namespace}-outpost-worker-nodes`)?.at(-1), { apiGroups: [''], resources: ['nodes/status'], verbs: ['get'] });

    const off = await render(chart, 'rbac-off-values.yaml');
    for (const kind of ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'ServiceAccount']) assert.equal(off.find(kind), undefined, kind);
    assert.equal(controllerOf(off).spec.serviceAccountName, 'outpost-controller');
    assert.equal(workerOf(off).spec.serviceAccountName, 'outpost-worker');
    assert.equal(off.jobPod().spec.serviceAccountName, 'outpost-job');
  });

  test('PodDisruptionBudgets: job pods are never evicted; controllers keep one running when there are several', async () => {
    const jobs = defaults.get('PodDisruptionBudget', `${fullname}-jobs`).spec as { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
    assert.equal(jobs.maxUnavailable, 0);
    assert.deepEqual(jobs.selector.matchLabels, jobLabels);
    assert.equal(defaults.find('PodDisruptionBudget', `${fullname}-controller`), undefined, 'no controller PDB with one replica');
    const ha = await render(chart, 'ha-controller-values.yaml');
    assert.equal(ha.get('Deployment').spec?.replicas, 3);
    const controllers = ha.get('PodDisruptionBudget', `${fullname}-controller`).spec as { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
    assert.equal(controllers.maxUnavailable, 1);
    assert.deepEqual(controllers.selector.matchLabels, { 'app.kubernetes.io/name': 'agent-k8s', 'app.kubernetes.io/instance': release, 'app.kubernetes.io/component': 'controller' });
    assert.equal(envOf(container(controllerOf(ha).spec, 'controller')).get('OUTPOST_AGENT_CONCURRENCY'), '20');
  });

  test('the token checksum on the controller and worker pods; an existing Secret is referenced', async () => {
    for (const pod of [controllerOf(defaults), workerOf(defaults)]) assert.equal(pod.metadata.annotations?.['checksum/agent-token'], sha256(profileToken));
    const existing = await render(chart, 'existing-secret-values.yaml');
    for (const [name, pod] of [['controller', controllerOf(existing)], ['worker', workerOf(existing)]] as const) {
      assert.equal(pod.metadata.annotations?.['checksum/agent-token'], sha256(''));
      assert.equal(envOf(container(pod.spec, name)).get('OUTPOST_AGENT_TOKEN'), 'secret:outpost-pool-token/pool-token');
    }
    assert.equal(existing.find('Secret'), undefined);
  });

  test('shutdown modes of the worker and the controller', async () => {
    assertShutdown(container(workerOf(defaults).spec, 'worker'), workerOf(defaults).spec, 'drain', 3660);
    assertShutdown(container(controllerOf(defaults).spec, 'controller'), controllerOf(defaults).spec, 'grace', 70);
    const drain = await render(chart, 'shutdown-drain-values.yaml');
    assertShutdown(container(workerOf(drain).spec, 'worker'), workerOf(drain).spec, 'drain', 7270);
    assertShutdown(container(controllerOf(drain).spec, 'controller'), controllerOf(drain).spec, 'drain', 120);
    const grace = await render(chart, 'shutdown-grace-values.yaml');
    assertShutdown(container(workerOf(grace).spec, 'worker'), workerOf(grace).spec, 'grace', 90);
    const force = await render(chart, 'shutdown-force-values.yaml');
    assertShutdown(container(workerOf(force).spec, 'worker'), workerOf(force).spec, 'force', 15);
    assertShutdown(container(controllerOf(force).spec, 'controller'), controllerOf(force).spec, 'force', 10);
  });

  test('caches: hostPath directories of one\'s choosing, or a ReadWriteMany claim shared by every node', async () => {
    const hostPath = await render(chart, 'hostpath-values.yaml');
    const worker = workerOf(hostPath).spec;
    assert.deepEqual(volume(worker, 'outpost-data').hostPath, { path: '/mnt/disks/ssd0/outpost/data', type: 'DirectoryOrCreate' });
    assert.deepEqual(volume(worker, 'outpost-cache').hostPath, { path: '/mnt/disks/ssd0/outpost/cache', type: 'DirectoryOrCreate' });
    assert.deepEqual(worker.initContainers?.[0]?.command?.slice(3), ['prepare-directories', '/mnt/disks/ssd0/outpost/data', '/mnt/disks/ssd0/outpost/cache']);
    assert.equal(envOf(container(worker, 'worker')).get('OUTPOST_AGENT_DATA_DIR'), '/mnt/disks/ssd0/outpost/data');
    const controllerEnv = envOf(container(controllerOf(hostPath).spec, 'controller'));
    assert.equal(controllerEnv.get('OUTPOST_AGENT_KUBERNETES_NODE_DATA_DIR'), '/mnt/disks/ssd0/outpost/data');
    assert.equal(controllerEnv.get('OUTPOST_AGENT_KUBERNETES_NODE_CACHE_DIR'), '/mnt/disks/ssd0/outpost/cache');
    assert.ok(!(hostPath.jobPod().spec.volumes ?? []).some((entry) => entry.hostPath), 'the controller adds the node directories to job pods');

    const rwx = await render(chart, 'rwx-cache-values.yaml');
    assert.deepEqual(rwx.get('PersistentVolumeClaim', `${fullname}-cache`).spec, { accessModes: ['ReadWriteMany'], storageClassName: 'efs-sc', resources: { requests: { storage: '200Gi' } } });
    assert.deepEqual(volume(workerOf(rwx).spec, 'outpost-cache').persistentVolumeClaim, { claimName: `${fullname}-cache` });
    // No directory of the node holds a shared volume: the job pod mounts the claim itself, read-only.
    assert.deepEqual(volume(rwx.jobPod().spec, 'shared-cache').persistentVolumeClaim, { claimName: `${fullname}-cache`, readOnly: true });
    assert.deepEqual(mount(container(rwx.jobPod().spec, 'job'), 'shared-cache'), { name: 'shared-cache', mountPath: '/var/cache/outpost-agent', readOnly: true });
    assert.deepEqual(workerOf(rwx).spec.initContainers?.[0]?.command?.slice(3), ['prepare-directories', '/var/lib/outpost-agent'], 'a shared volume is not chowned by each node');

    const existing = await render(chart, 'existing-rwx-claim-values.yaml');
    assert.equal(existing.find('PersistentVolumeClaim'), undefined);
    assert.deepEqual(volume(workerOf(existing).spec, 'outpost-cache').persistentVolumeClaim, { claimName: 'filestore-shared' });
    assert.deepEqual(mount(container(workerOf(existing).spec, 'worker'), 'outpost-cache'), { name: 'outpost-cache', mountPath: '/mnt/outpost-cache', subPath: 'outpost' });
    assert.deepEqual(volume(existing.jobPod().spec, 'shared-cache').persistentVolumeClaim, { claimName: 'filestore-shared', readOnly: true });
    assert.deepEqual(mount(container(existing.jobPod().spec, 'job'), 'shared-cache'), { name: 'shared-cache', mountPath: '/mnt/outpost-cache', readOnly: true, subPath: 'outpost' });
    assert.equal(envOf(container(workerOf(existing).spec, 'worker')).get('OUTPOST_AGENT_CACHE_DIR'), '/mnt/outpost-cache');
  });

  test('the NetworkPolicy covers the job pods: metadata blocked, DNS allowed; it can be turned off or opened', async () => {
    assertMetadataBlocked(defaults.get('NetworkPolicy', `${fullname}-jobs`), jobLabels);
    assert.equal(defaults.all('NetworkPolicy').length, 1);
    assertMetadataAllowed((await render(chart, 'metadata-allowed-values.yaml')).get('NetworkPolicy'));
    assert.equal((await render(chart, 'network-policy-off-values.yaml')).find('NetworkPolicy'), undefined);
  });

  test('metrics: annotations on the controller and workers by default, a ServiceMonitor only when asked', async () => {
    for (const pod of [controllerOf(defaults), workerOf(defaults)]) {
      assert.equal(pod.metadata.annotations?.['prometheus.io/scrape'], 'true');
      assert.equal(pod.metadata.annotations?.['prometheus.io/port'], '9090');
    }
    assert.equal(defaults.find('ServiceMonitor'), undefined);
    assert.equal(defaults.find('Service'), undefined);
    const monitored = await render(chart, 'service-monitor-values.yaml');
    assert.equal(controllerOf(monitored).metadata.annotations?.['prometheus.io/scrape'], undefined);
    const services = monitored.all('Service');
    assert.deepEqual(services.map((service) => service.metadata.name).sort(), [`${fullname}-controller-metrics`, `${fullname}-worker-metrics`]);
    const monitor = monitored.get('ServiceMonitor', fullname).spec as { selector: { matchLabels: Record<string, string> } };
    for (const service of services) {
      for (const [label, value] of Object.entries(monitor.selector.matchLabels)) assert.equal(service.metadata.labels?.[label], value, `${service.metadata.name} is selected`);
    }
  });
});
