// Two server replicas on one PostgreSQL database (and one shared blob
// directory, standing in for shared object storage). Proves that a run
// queued through replica B wakes an agent long-polling replica A through
// PostgreSQL LISTEN/NOTIFY: replica A holds polls for ten minutes and the
// agent's HTTP client gives up on a poll only after two, so without the
// cross-replica wake-up the run could not even start within the wait below.
import { describe, test } from 'node:test';
import { callApi } from '../support/json-api-client.ts';
import { startAgent, startServer, type ServerHandle } from '../support/cluster.ts';
import { databaseBackends } from '../support/postgres.ts';
import { createPool, createRun, createWorkspace, uploadConfiguration } from '../support/api-calls.ts';
import { waitForRunStatus } from '../support/waits.ts';

const configuration = {
  'main.tf': `
resource "terraform_data" "replica" {
  input = "queued on another replica"
}
output "value" {
  value = terraform_data.replica.output
}
`,
};

describe('several server replicas on PostgreSQL', { skip: !databaseBackends().includes('postgres') && 'PostgreSQL is not configured' }, () => {
  test('a run queued through one replica is claimed at once by an agent polling another', async (t) => {
    const replicaA = await startServer({ backend: 'postgres', t, env: { OUTPOST_POLL_TIMEOUT: '60s' } });
    const started = await startServer({
      backend: 'sqlite',
      t,
      env: { OUTPOST_DATABASE_URL: replicaA.database!.url, OUTPOST_DATA_DIR: replicaA.dataDir, OUTPOST_POLL_TIMEOUT: '60s' },
    });
    // Replica B shares A's database, so A's admin token is the one that exists.
    const replicaB: ServerHandle = {
      ...started,
      adminToken: replicaA.adminToken,
      api: (method, urlPath, body, options) => callApi(started.url, replicaA.adminToken, method, urlPath, body, options),
    };

    const pool = await createPool(replicaA);
    const workspace = await createWorkspace(replicaA, { poolId: pool.id, autoApply: true });
    const agent = await startAgent(replicaA, { token: pool.token, t });
    // Wait until the agent is registered and idle, so its long-poll is open on replica A.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const agents = await replicaA.api<{ data: { attributes: { status: string } }[] }>('GET', `/api/v2/agent-pools/${pool.id}/agents`);
      if (agents.body.data.some((a) => a.attributes.status === 'idle')) break;
      if (Date.now() > deadline) throw new Error(`the agent did not register:\n${agent.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));

    const cv = await uploadConfiguration(replicaB, workspace.id, configuration);
    const run = await createRun(replicaB, workspace.id, cv);
    await waitForRunStatus(replicaB, run.id, ['applied'], 90_000, [replicaA, started, agent]);
  });
});
