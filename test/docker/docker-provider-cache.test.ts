// The provider cache with the docker driver: job containers (on the agent's
// network, here the host's) reach the agent's loopback provider mirror, trust
// its CA through the bundle the job operation builds inside the container,
// and get the provider from the agent's cache: plan and apply, two
// containers, one download from the origin.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRun, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { startProviderRegistry, type ProviderRegistry } from '../support/provider-registry.ts';
import { dockerUnavailable, runnerImage, setupDockerCluster } from '../support/docker-cluster.ts';

const unavailable = dockerUnavailable([runnerImage]);
const hostname = 'registry.outpost.test';

describe('provider cache with the docker driver', { skip: unavailable }, () => {
  let origin: ProviderRegistry;
  before(async () => {
    origin = await startProviderRegistry({ protocol: 'registry', providers: [{ namespace: 'outpost-test', type: 'simple', versions: ['1.0.0'] }] });
  });
  after(() => origin?.close());

  test('jobs in containers get their provider from the agent\'s cache', async (t) => {
    const cluster = await setupDockerCluster(t, {
      agentEnv: {
        OUTPOST_AGENT_CA_CERT: origin.caFile,
        OUTPOST_AGENT_PROVIDER_REGISTRY_SERVICES: JSON.stringify({ [hostname]: `${origin.url}/v1/providers/` }),
      },
    });
    const config = {
      'main.tf': `terraform {\n  required_providers {\n    simple = { source = "${hostname}/outpost-test/simple", version = "1.0.0" }\n  }\n}\nresource "simple_resource" "x" {\n  value = "in-a-container"\n}\n`,
    };
    const run = await createRun(cluster.server, cluster.workspace.id, await uploadConfiguration(cluster.server, cluster.workspace.id, config));
    await cluster.waitFor(run.id, ['applied'], 180_000);
    const plan = await readLog(cluster.server, relatedId(run, 'plan'));
    assert.match(plan, /driver docker/, plan);
    assert.match(plan, /providers: from the agent's provider cache/, plan);
    assert.match(plan, /Installed registry\.outpost\.test\/outpost-test\/simple v1\.0\.0/, plan);
    assert.equal(origin.requests.filter((request) => request.path.endsWith('.zip')).length, 1, JSON.stringify(origin.requests));
  });
});
