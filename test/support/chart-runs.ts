// What the tests that run plans through an installed chart share: token
// rotation at the control plane, and checking that `helm uninstall` left
// nothing in the cluster or in the pool.
import assert from 'node:assert/strict';
import { apiCall, createRun, listAgents, uploadConfiguration, type Pool, type Resource, type Workspace } from './api-calls.ts';
import type { ServerHandle, TestHooks } from './cluster.ts';
import { waitForCluster, type ClusterTools } from './helm-release.ts';
import { HeldEndpoint, planTimeReadConfig } from './job-control.ts';
import { waitUntil } from './waits.ts';

/** The pool's agents that are not offline, by name. */
export async function onlineAgentNames(server: ServerHandle, poolId: string): Promise<string[]> {
  return (await listAgents(server, poolId)).filter((agent) => agent.attributes.status !== 'offline').map((agent) => agent.attributes.name);
}

/** A new pool token, and a way to revoke every token the pool had before it. */
export async function rotatePoolToken(server: ServerHandle, pool: Pool): Promise<{ token: string; revokeOld(): Promise<void> }> {
  const old = await apiCall<{ data: Resource<unknown>[] }>(server, 'GET', `/api/v2/agent-pools/${pool.id}/authentication-tokens`, undefined, 200);
  const body = { data: { type: 'authentication-tokens', attributes: { description: 'rotated' } } };
  const fresh = await apiCall<{ data: Resource<{ token: string }> }>(server, 'POST', `/api/v2/agent-pools/${pool.id}/authentication-tokens`, body, 201);
  return {
    token: fresh.data.attributes.token,
    revokeOld: async () => {
      for (const token of old.data) await apiCall(server, 'DELETE', `/api/v2/authentication-tokens/${token.id}`, undefined, 204);
    },
  };
}

/** `helm uninstall`, then: no pod left in the namespace, no object of the release, no agent of the pool online. */
export async function uninstallLeavesNothing(k: ClusterTools, server: ServerHandle, pool: Pool, namespace: string, release: string, describeAll: () => Promise<string>): Promise<void> {
  await k.helm(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '180s']);
  await waitForCluster('every pod gone', 180_000, async () => ((await k.pods(namespace)).length === 0 ? true : undefined), describeAll);
  assert.equal(await k.leftovers(namespace, release), '');
  await waitUntil('the agents to leave the pool', async () => ((await onlineAgentNames(server, pool.id)).length === 0 ? true : undefined), async () => JSON.stringify(await listAgents(server, pool.id)));
}

/**
 * A run whose plan is held mid-way: it reads a state from an endpoint on
 * `host` that answers only once released (released, at the latest, when
 * the test ends, so nothing waits on it after).
 */
export async function startHeldPlan(
  t: TestHooks,
  server: ServerHandle,
  workspace: Workspace,
  host: string,
  describeAll: () => Promise<string>,
  runOptions?: Parameters<typeof createRun>[3],
): Promise<{ endpoint: HeldEndpoint; run: Awaited<ReturnType<typeof createRun>> }> {
  const endpoint = await HeldEndpoint.start(t, host);
  t.after(() => endpoint.release());
  const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, planTimeReadConfig(endpoint.url('/held'))), runOptions);
  await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), describeAll, 180_000);
  return { endpoint, run };
}
