// Pool token revocation and refused tokens end to end: a running agent whose
// pool token is revoked stops with exit code 3 and says why; an agent started
// with a revoked, unknown or wrong-kind token exits 3 at once and never joins
// the pool.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { startAgent } from '../support/cluster.ts';
import { apiCall, listAgents } from '../support/api-calls.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { exitCodeOf, onlyPoolTokenId } from '../support/job-control.ts';

/** Keeps the test fast: a revoked agent learns it when its long-poll returns. */
const serverEnv = { OUTPOST_POLL_TIMEOUT: '2s' };

async function revokePoolToken(cluster: Cluster): Promise<void> {
  const tokenId = await onlyPoolTokenId(cluster.server, cluster.pool.id);
  await apiCall(cluster.server, 'DELETE', `/api/v2/authentication-tokens/${tokenId}`, undefined, 204);
}

test('revoking the pool token stops a running idle agent with exit code 3 (sqlite)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { serverEnv });
  const agent = cluster.agents[0]!;
  await revokePoolToken(cluster);

  const code = await exitCodeOf(agent, 30_000);
  const output = agent.output();
  assert.equal(code, 3, output);
  assert.match(output, /the control plane revoked this agent \(token_revoked\): the pool token this agent registered with has been revoked/, output);
});

test('an agent started with a revoked, an unknown or a wrong-kind token exits 3 at start (sqlite)', async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0, serverEnv });
  const { server, pool } = cluster;
  await revokePoolToken(cluster);

  const cases = [
    { what: 'revoked pool token', token: pool.token, message: /refused the pool token \(token_revoked\): the pool token has been revoked/ },
    {
      what: 'unknown pool token',
      token: `opp_${randomBytes(20).toString('hex')}`,
      message: /refused the pool token \(token_invalid\): the pool token is not valid/,
    },
    {
      what: 'API token used as a pool token',
      token: server.adminToken,
      message: /refused the pool token \(token_invalid\): registration needs a pool token \(opp_…\)/,
    },
  ];
  for (const { what, token, message } of cases) {
    const agent = await startAgent(server, { token, t });
    const code = await exitCodeOf(agent, 30_000);
    const output = agent.output();
    assert.equal(code, 3, `${what}:\n${output}`);
    assert.match(output, message, `${what}:\n${output}`);
    assert.doesNotMatch(output, /"msg":"registered"/, `${what}:\n${output}`);
  }
  assert.deepEqual(await listAgents(server, pool.id), [], 'no agent may have joined the pool');

  // And the other way round: a pool token is no API token.
  const refused = await server.api<{ errors: { code: string }[] }>('GET', '/api/v2/organizations/default/agent-pools', undefined, {
    token: pool.token,
  });
  assert.equal(refused.status, 401, JSON.stringify(refused.body));
  assert.equal(refused.body.errors[0]?.code, 'token_invalid', JSON.stringify(refused.body));
});
