// The agent-local chart renders what it should: secure agent pods with no
// Kubernetes API access in every profile, the agent's environment (the
// contract with the agent's settings), every option reaching the agent, the
// token's checksum, the stop timeouts derived per shutdown mode, the volumes
// of each storage choice, the HorizontalPodAutoscaler, the NetworkPolicy's
// exceptions, the metrics annotations or ServiceMonitor, and a VCS agent's
// webhook listener with its Service.
//
// Needs helm (scripts/kubernetes/build-tools.sh): skipped without it, except
// under CI=true where its absence fails the suite.
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import {
  defaultAgentEnv,
  assertMetadataAllowed, assertMetadataBlocked, assertSecurePod, assertShutdown, chartsDir, container, envOf, helm, mount,
  profilesOf, profileToken, release, render, sha256, skipWithoutHelm, templateArgs, volume, type Rendered,
} from '../support/chart-render.ts';

describe('agent-local', { skip: skipWithoutHelm }, () => {
  const chart = 'agent-local';
  const fullname = `${release}-agent-local`;
  const selector = { 'app.kubernetes.io/name': 'agent-local', 'app.kubernetes.io/instance': release, 'app.kubernetes.io/component': 'agent' };
  let defaults: Rendered;
  before(async () => {
    defaults = await render(chart, 'default-values.yaml');
  });

  test('secure defaults on the agent pods of every profile; no Kubernetes API access', async () => {
    for (const profile of profilesOf(chart).good) {
      const rendered = await render(chart, profile);
      const spec = rendered.podTemplate('Deployment').spec;
      assertSecurePod(spec, ['agent'], profile);
      assert.equal(spec.automountServiceAccountToken, false, `${profile}: no service account token`);
      for (const kind of ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']) assert.equal(rendered.find(kind), undefined, `${profile}: ${kind}`);
      const account = rendered.find('ServiceAccount');
      if (account) assert.equal(account.automountServiceAccountToken, false, `${profile}: the service account mounts no token`);
    }
  });

  test('the agent container: the local driver, one job, the settings the agent reads', () => {
    const agent = container(defaults.podTemplate('Deployment').spec, 'agent');
    assert.equal(agent.image, 'outpost/agent:0.1.0');
    assert.deepEqual(agent.args, ['run']);
    assert.deepEqual(Object.fromEntries(envOf(agent)), {
      OUTPOST_AGENT_TOKEN: `secret:${fullname}/token`,
      OUTPOST_AGENT_NAME: 'field:metadata.name',
      OUTPOST_AGENT_DRIVER: 'local',
      OUTPOST_AGENT_CONCURRENCY: '1',
      ...defaultAgentEnv,
    });
    assert.deepEqual(agent.ports, [{ name: 'health', containerPort: 9090, protocol: 'TCP' }]);
    assert.equal(agent.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(agent.readinessProbe?.httpGet?.path, '/readyz');
    const secret = defaults.get('Secret', fullname);
    assert.equal(Buffer.from(secret.data?.token ?? '', 'base64').toString(), profileToken);
  });

  test('every option reaches the agent: URL, proxy, CA, mirrors, extra env, image, placement', async () => {
    const rendered = await render(chart, 'options-values.yaml');
    const deployment = rendered.get('Deployment', 'runners');
    const pod = rendered.podTemplate('Deployment');
    const agent = container(pod.spec, 'agent');
    const env = envOf(agent);
    assert.equal(agent.image, 'registry.example.com/outpost/agent-runner:0.1.0-custom', 'global.imageRegistry wins');
    assert.equal(agent.imagePullPolicy, 'Always');
    assert.equal(env.get('OUTPOST_URL'), 'https://outpost.example.com');
    assert.equal(env.get('OUTPOST_AGENT_LOG_LEVEL'), 'debug');
    assert.equal(env.get('OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT'), '70');
    assert.equal(env.get('OUTPOST_AGENT_BINARY_MIRROR'), 'https://mirror.example.com/engines');
    assert.equal(env.get('OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS'), 'secret:runners/provider-network-mirrors');
    const mirrors = JSON.parse(Buffer.from(rendered.get('Secret', 'runners').data?.['provider-network-mirrors'] ?? '', 'base64').toString()) as unknown;
    assert.deepEqual(mirrors, [{ url: 'https://providers.example.com/', token: 'mirror-token', include: ['registry.opentofu.org/hashicorp/*'] }]);
    assert.equal(env.get('OUTPOST_AGENT_CA_CERT'), '/etc/outpost-ca/ca.crt');
    assert.equal(env.get('NODE_EXTRA_CA_CERTS'), '/etc/outpost-ca/ca.crt');
    assert.equal(mount(agent, 'ca-bundle').mountPath, '/etc/outpost-ca');
    assert.deepEqual(volume(pod.spec, 'ca-bundle').configMap, { name: 'corporate-ca', items: [{ key: 'bundle.pem', path: 'ca.crt' }] });
    assert.equal(env.get('HTTPS_PROXY'), 'http://proxy.example.com:3128');
    assert.equal(env.get('HTTP_PROXY'), 'http://proxy.example.com:3128');
    assert.equal(env.get('NO_PROXY'), '.cluster.local,10.0.0.0/8');
    assert.equal(env.get('TF_LOG'), 'info');
    assert.deepEqual(agent.envFrom, [{ secretRef: { name: 'cloud-credentials' } }]);
    assert.equal(mount(agent, 'ssh-keys').mountPath, '/etc/ssh-keys');
    assert.ok(volume(pod.spec, 'ssh-keys').secret);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['agent', 'log-forwarder']);
    assert.deepEqual(pod.spec.imagePullSecrets, [{ name: 'registry-credentials' }]);
    assert.equal(pod.spec.serviceAccountName, 'outpost-agents');
    assert.equal(pod.spec.priorityClassName, 'outpost-agents');
    assert.deepEqual(pod.spec.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(pod.spec.tolerations?.length, 1);
    assert.ok(pod.spec.affinity);
    assert.equal(pod.spec.topologySpreadConstraints?.length, 1);
    assert.equal(deployment.spec?.replicas, 3);
    assert.equal(deployment.spec?.revisionHistoryLimit, 3);
    assert.equal(deployment.metadata.labels?.team, 'platform');
    assert.equal(pod.metadata.labels?.['cost-center'], 'infra');
    assert.equal(pod.metadata.labels?.team, 'platform');
    assert.equal(pod.metadata.annotations?.['karpenter.sh/do-not-disrupt'], undefined, 'null removes a default annotation');
    assert.equal(pod.metadata.annotations?.['cluster-autoscaler.kubernetes.io/safe-to-evict'], 'false');
    assert.equal(rendered.get('ServiceAccount', 'outpost-agents').metadata.annotations?.['eks.amazonaws.com/role-arn'], 'arn:aws:iam::123456789012:role/outpost-agents');
  });

  test('the token checksum: sha256 of a chart-made token; an existing Secret is referenced and read by lookup', async () => {
    const annotations = defaults.podTemplate('Deployment').metadata.annotations ?? {};
    assert.equal(annotations['checksum/agent-token'], sha256(profileToken));
    const rotated = await render(chart, 'default-values.yaml', ['agent.token=opp_rotated']);
    assert.equal(rotated.podTemplate('Deployment').metadata.annotations?.['checksum/agent-token'], sha256('opp_rotated'), 'a new token rolls the pods');

    const existing = await render(chart, 'existing-secret-values.yaml');
    const pod = existing.podTemplate('Deployment');
    assert.equal(envOf(container(pod.spec, 'agent')).get('OUTPOST_AGENT_TOKEN'), 'secret:outpost-pool-token/pool-token');
    assert.equal(envOf(container(pod.spec, 'agent')).get('OUTPOST_URL'), 'https://outpost.example.com');
    // helm template has no cluster to look the Secret up in: the checksum of nothing.
    assert.equal(pod.metadata.annotations?.['checksum/agent-token'], sha256(''));
    assert.equal(existing.find('Secret'), undefined, 'no Secret of the chart when the token has its own');
  });

  test('shutdown modes: the agent\'s timeouts derived from terminationGracePeriodSeconds', async () => {
    assertShutdown(container(defaults.podTemplate('Deployment').spec, 'agent'), defaults.podTemplate('Deployment').spec, 'drain', 3660);
    for (const [profile, mode, seconds] of [['shutdown-drain-values.yaml', 'drain', 600], ['shutdown-grace-values.yaml', 'grace', 120], ['shutdown-force-values.yaml', 'force', 10]] as const) {
      const spec = (await render(chart, profile)).podTemplate('Deployment').spec;
      assertShutdown(container(spec, 'agent'), spec, mode, seconds);
    }
  });

  test('volumes: emptyDir by default, claims made or named, hostPath prepared by an init container', async () => {
    let spec = defaults.podTemplate('Deployment').spec;
    assert.deepEqual(volume(spec, 'data').emptyDir, { sizeLimit: '4Gi' });
    assert.deepEqual(volume(spec, 'cache').emptyDir, { sizeLimit: '10Gi' });
    assert.equal(spec.initContainers, undefined);
    assert.deepEqual(defaults.get('Deployment').spec?.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    assert.equal(defaults.find('PersistentVolumeClaim'), undefined);

    const persistent = await render(chart, 'persistent-values.yaml');
    spec = persistent.podTemplate('Deployment').spec;
    assert.deepEqual(volume(spec, 'data').persistentVolumeClaim, { claimName: `${fullname}-data` });
    assert.deepEqual(volume(spec, 'cache').persistentVolumeClaim, { claimName: `${fullname}-cache` });
    assert.equal(mount(container(spec, 'agent'), 'cache').subPath, 'outpost');
    assert.deepEqual(persistent.get('PersistentVolumeClaim', `${fullname}-data`).spec, { accessModes: ['ReadWriteOnce'], storageClassName: 'standard', resources: { requests: { storage: '5Gi' } } });
    assert.deepEqual(persistent.get('PersistentVolumeClaim', `${fullname}-cache`).spec, { accessModes: ['ReadWriteOnce'], storageClassName: '', resources: { requests: { storage: '50Gi' } } });
    assert.deepEqual(persistent.get('Deployment').spec?.strategy, { type: 'Recreate' }, 'one claim, one pod at a time');

    const claimed = await render(chart, 'existing-claim-values.yaml');
    assert.deepEqual(volume(claimed.podTemplate('Deployment').spec, 'cache').persistentVolumeClaim, { claimName: 'outpost-shared-cache' });
    assert.equal(claimed.find('PersistentVolumeClaim'), undefined);

    const hostPath = await render(chart, 'hostpath-values.yaml');
    spec = hostPath.podTemplate('Deployment').spec;
    assert.deepEqual(volume(spec, 'data').hostPath, { path: '/mnt/outpost/data', type: 'DirectoryOrCreate' });
    assert.deepEqual(volume(spec, 'cache').hostPath, { path: '/mnt/outpost/cache', type: 'DirectoryOrCreate' });
    const init = spec.initContainers?.[0];
    assert.ok(init);
    assert.deepEqual(init.command?.slice(3), ['prepare-directories', '/var/lib/outpost-agent', '/var/cache/outpost-agent']);
    assert.match(init.command?.[2] ?? '', /chown 1000:1000 "\$dir"/);
    assert.match(init.command?.[2] ?? '', /chmod 0775 "\$dir"/);
    assert.deepEqual(init.volumeMounts, [{ name: 'data', mountPath: '/var/lib/outpost-agent' }, { name: 'cache', mountPath: '/var/cache/outpost-agent' }]);
  });

  test('autoscaling: a HorizontalPodAutoscaler owns the replica count', async () => {
    const rendered = await render(chart, 'autoscaling-values.yaml');
    assert.equal(rendered.get('Deployment').spec?.replicas, undefined);
    const hpa = rendered.get('HorizontalPodAutoscaler', fullname).spec as { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number; metrics: { resource: { name: string; target: { averageUtilization: number } } }[] };
    assert.deepEqual(hpa.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: fullname });
    assert.equal(hpa.minReplicas, 2);
    assert.equal(hpa.maxReplicas, 8);
    assert.deepEqual(hpa.metrics.map((metric) => [metric.resource.name, metric.resource.target.averageUtilization]), [['cpu', 50], ['memory', 70]]);
    assert.equal(defaults.find('HorizontalPodAutoscaler'), undefined);
  });

  test('the NetworkPolicy blocks the metadata service, allows DNS; it can be turned off or opened', async () => {
    assertMetadataBlocked(defaults.get('NetworkPolicy', fullname), selector);
    assertMetadataAllowed((await render(chart, 'metadata-allowed-values.yaml')).get('NetworkPolicy'));
    assert.equal((await render(chart, 'network-policy-off-values.yaml')).find('NetworkPolicy'), undefined);
  });

  test('metrics: prometheus.io annotations by default, a ServiceMonitor only when asked', async () => {
    const annotations = defaults.podTemplate('Deployment').metadata.annotations ?? {};
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/port'], '9090');
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    assert.equal(defaults.find('ServiceMonitor'), undefined);
    assert.equal(defaults.find('Service'), undefined);
    const monitored = await render(chart, 'service-monitor-values.yaml');
    assert.equal(monitored.podTemplate('Deployment').metadata.annotations?.['prometheus.io/scrape'], undefined);
    const service = monitored.get('Service', `${fullname}-metrics`).spec as { clusterIP: string; selector: Record<string, string>; ports: { name: string; port: number }[] };
    assert.equal(service.clusterIP, 'None');
    assert.deepEqual(service.selector, selector);
    const monitor = monitored.get('ServiceMonitor', fullname);
    assert.equal(monitor.metadata.labels?.release, 'prometheus');
    assert.deepEqual((monitor.spec as { endpoints: unknown[] }).endpoints, [{ port: 'health', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }]);
  });

  test('a VCS agent: the webhook listener\'s env, port and Service only when enabled; extraEnv cannot set its port', async () => {
    const serviceName = `${fullname}-vcs-webhooks`;
    const health = { name: 'health', containerPort: 9090, protocol: 'TCP' };
    const defaultAgent = container(defaults.podTemplate('Deployment').spec, 'agent');
    assert.equal(envOf(defaultAgent).has('OUTPOST_AGENT_VCS_WEBHOOK_PORT'), false, 'off by default');
    assert.deepEqual(defaultAgent.ports, [health]);
    assert.equal(defaults.find('Service', serviceName), undefined);

    const vcs = await render(chart, 'vcs-webhooks-values.yaml');
    const pod = vcs.podTemplate('Deployment');
    const agent = container(pod.spec, 'agent');
    // The listener is the only difference: the agent learns its pool's kind from the token.
    const { OUTPOST_AGENT_VCS_WEBHOOK_PORT: port, ...rest } = Object.fromEntries(envOf(agent));
    assert.equal(port, '8088');
    assert.deepEqual(rest, Object.fromEntries(envOf(defaultAgent)));
    assert.deepEqual(agent.ports, [health, { name: 'vcs-webhooks', containerPort: 8088, protocol: 'TCP' }]);
    const service = vcs.get('Service', serviceName);
    assert.deepEqual(service.metadata.annotations, { 'service.beta.kubernetes.io/aws-load-balancer-internal': 'true' });
    assert.deepEqual(service.spec, { type: 'LoadBalancer', selector, ports: [{ name: 'vcs-webhooks', port: 8088, targetPort: 'vcs-webhooks', protocol: 'TCP' }] });
    for (const [label, value] of Object.entries(selector)) assert.equal(pod.metadata.labels?.[label], value, `the Service selects the agent pods (${label})`);
    assert.deepEqual(vcs.all('Service').map((s) => s.metadata.name), [serviceName]);

    const moved = await render(chart, 'default-values.yaml', ['vcs.webhookListener.enabled=true', 'vcs.webhookListener.port=9443']);
    const movedAgent = container(moved.podTemplate('Deployment').spec, 'agent');
    assert.equal(envOf(movedAgent).get('OUTPOST_AGENT_VCS_WEBHOOK_PORT'), '9443');
    assert.deepEqual(movedAgent.ports?.[1], { name: 'vcs-webhooks', containerPort: 9443, protocol: 'TCP' });
    const movedService = moved.get('Service', serviceName);
    assert.equal(movedService.metadata.annotations, undefined);
    assert.deepEqual(movedService.spec, { type: 'ClusterIP', selector, ports: [{ name: 'vcs-webhooks', port: 9443, targetPort: 'vcs-webhooks', protocol: 'TCP' }] });

    // A full name of 63 characters: the Service's name is shortened to stay a valid name.
    const long = await render(chart, 'vcs-webhooks-values.yaml', [`fullnameOverride=${'a'.repeat(63)}`]);
    assert.deepEqual(long.all('Service').map((s) => s.metadata.name), [`${'a'.repeat(50)}-vcs-webhooks`]);

    for (const name of ['OUTPOST_AGENT_VCS_WEBHOOK_PORT', 'SCALR_AGENT_VCS_WEBHOOK_PORT']) {
      const outcome = await helm(templateArgs(chart, [path.join(chartsDir, chart, 'ci', 'vcs-webhooks-values.yaml')], [`agent.extraEnv[0].name=${name}`]));
      assert.notEqual(outcome.code, 0, `extraEnv setting ${name} rendered`);
      assert.ok(outcome.stderr.includes(`agent.extraEnv sets ${name}, which the chart sets itself`), outcome.stderr);
    }
  });
});
