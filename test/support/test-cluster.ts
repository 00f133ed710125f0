// A cluster for end-to-end tests of runs: the real server, an agent pool
// with a token, a workspace, and real agents running the real OpenTofu.
//
//   describe(`plans (${backend})`, () => {
//     const hooks = suiteHooks();                    // one cluster per describe
//     let cluster: Cluster;
//     before(async () => { cluster = await setupCluster(hooks, backend); });
//     test('applies', async () => {
//       const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, { 'main.tf': '…' });
//       const run = await createRun(cluster.server, cluster.workspace.id, cv);
//       await cluster.waitForRun(run.id, ['applied']);
//     });
//   });
//
// Or per test: `const cluster = await setupCluster(t, backend)`.
import { after } from 'node:test';
import type { Run, Workspace } from '../../src/protocol/api-resources.ts';
import type { RunStatus } from '../../src/protocol/statuses.ts';
import { createPool, createWorkspace, listAgents, type Pool, type WorkspaceOptions } from './api-calls.ts';
import { startAgent, startServer, type AgentHandle, type ServerHandle, type TestHooks } from './cluster.ts';
import type { DatabaseBackend } from './postgres.ts';
import type { ServerTls } from './tls.ts';
import { processLogs, runDiagnostics, waitForRunStatus, waitUntil } from './waits.ts';

/**
 * TestHooks for a whole describe: cleanups registered with it run in one
 * `after` hook of the suite, last registered first. Call it synchronously in
 * the describe body, then pass it to setupCluster in a `before` hook.
 */
export function suiteHooks(): TestHooks {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'suite cleanup failed');
  });
  return {
    after: (fn) => {
      if (fn !== undefined) cleanups.push(fn as () => unknown);
    },
  } as TestHooks;
}

export interface ClusterOptions {
  /** Agents to start (default 1); 0 starts none (start them with cluster.startAgent). */
  readonly agents?: number;
  /** OUTPOST_AGENT_CONCURRENCY of each agent (default: the agent's default, 1). */
  readonly concurrency?: number;
  /** Auto-apply of the workspace created (default true). */
  readonly autoApply?: boolean;
  readonly serverEnv?: Readonly<Record<string, string>>;
  /** The server's listen address (default 127.0.0.1); 0.0.0.0 lets agents in a test's network namespace reach it. */
  readonly listenHost?: string;
  readonly agentEnv?: Readonly<Record<string, string>>;
  /** The script the server and agents run: the sources unless given (benchmarks measure the shipped bin/outpost.js). */
  readonly entryPoint?: string;
  /** Serve HTTPS with these (test/support/tls.ts); the agents trust its CA. */
  readonly tls?: ServerTls;
}

export interface Cluster {
  readonly server: ServerHandle;
  readonly pool: Pool;
  /** A workspace in the pool, created with the cluster. */
  readonly workspace: Workspace;
  readonly agents: AgentHandle[];
  /** Starts one more agent in the pool and waits until it is registered. */
  startAgent(env?: Readonly<Record<string, string>>): Promise<AgentHandle>;
  /** Creates another workspace in the pool (auto-apply unless said otherwise). */
  createWorkspace(options?: Omit<WorkspaceOptions, 'poolId'>): Promise<Workspace>;
  /** waitForRunStatus with every agent's log in the failure message. */
  waitForRun(runId: string, statuses: readonly RunStatus[], timeoutMs?: number): Promise<Run>;
  /** The run's logs and every process log, for assertion messages. */
  diagnostics(runId?: string): Promise<string>;
}

/**
 * Starts the server (cleaned up through `t`), creates an agent pool with a
 * token and an auto-apply workspace through the API, then starts the agents
 * and waits until they have registered.
 */
export async function setupCluster(t: TestHooks, backend: DatabaseBackend, options: ClusterOptions = {}): Promise<Cluster> {
  const entry = options.entryPoint === undefined ? {} : { entryPoint: options.entryPoint };
  const server = await startServer({
    backend,
    t,
    ...entry,
    ...(options.serverEnv ? { env: options.serverEnv } : {}),
    ...(options.listenHost ? { listenHost: options.listenHost } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
  });
  const pool = await createPool(server);
  const workspace = await createWorkspace(server, { poolId: pool.id, autoApply: options.autoApply ?? true });
  const agents: AgentHandle[] = [];
  const agentEnv: Record<string, string> = { ...options.agentEnv };
  if (options.concurrency !== undefined) agentEnv.OUTPOST_AGENT_CONCURRENCY = String(options.concurrency);

  const cluster: Cluster = {
    server,
    pool,
    workspace,
    agents,
    async startAgent(env = {}) {
      const agent = await startAgent(server, { token: pool.token, t, ...entry, env: { ...agentEnv, ...env } });
      agents.push(agent);
      await waitUntil(
        `agent ${agent.name} to register`,
        async () => ((await listAgents(server, pool.id)).some((a) => a.attributes.name === agent.name) ? true : undefined),
        () => processLogs([server, ...agents]),
        30_000,
      );
      return agent;
    },
    createWorkspace: (workspaceOptions = {}) => createWorkspace(server, { ...workspaceOptions, poolId: pool.id }),
    waitForRun: (runId, statuses, timeoutMs) => waitForRunStatus(server, runId, statuses, timeoutMs, agents),
    diagnostics: async (runId) => (runId === undefined ? processLogs([server, ...agents]) : runDiagnostics(server, runId, agents)),
  };
  for (let i = 0; i < (options.agents ?? 1); i++) await cluster.startAgent();
  return cluster;
}
