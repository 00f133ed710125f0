// Shared fixtures for end-to-end tests of runs: a cluster (the real server,
// an agent pool with a token, a workspace, and real agents running the real
// OpenTofu), and small API helpers to upload configurations, start runs,
// wait for their statuses and read their logs. Every wait fails with the
// run's logs and the tails of the server and agent logs, so a failure shows
// what happened without re-running.
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
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { create as createTar } from 'tar';
import { isFinalRunStatus, type RunStatus } from '../../src/protocol/statuses.ts';
import {
  startAgent,
  startServer,
  type AgentHandle,
  type ServerHandle,
  type TestHooks,
  type TestResource,
} from '../support/cluster.ts';
import { cliCommand, inheritedEnvironment } from '../support/cluster-environment.ts';
import { logTail } from '../support/spawned-process.ts';
import type { DatabaseBackend } from '../support/postgres.ts';

export type { RunStatus } from '../../src/protocol/statuses.ts';

/** Whether a run status is final (the run never changes again). */
export function isFinal(status: RunStatus): boolean {
  return isFinalRunStatus(status);
}

/** The default wait for anything a run does: generous, since CI machines are slow. */
export const defaultTimeoutMs = 60_000;

export interface Relationship {
  data: { id: string; type: string } | null;
}

export interface Resource<A> {
  id: string;
  type: string;
  attributes: A;
  relationships?: Record<string, Relationship>;
}

export interface RunAttributes {
  status: RunStatus;
  message: string;
  'is-destroy': boolean;
  'plan-only': boolean;
  'auto-apply': boolean;
  'has-changes': boolean | null;
  'resource-additions': number | null;
  'resource-changes': number | null;
  'resource-destructions': number | null;
  'error-code': string | null;
  'error-message': string | null;
  'created-at': string;
  'status-timestamps': Record<string, string>;
}
export type Run = Resource<RunAttributes>;

export interface PhaseAttributes {
  status: string;
  'has-changes': boolean | null;
  'resource-additions': number | null;
  'resource-changes': number | null;
  'resource-destructions': number | null;
}
export type Phase = Resource<PhaseAttributes>;

export interface WorkspaceAttributes {
  name: string;
  'auto-apply': boolean;
  locked: boolean;
}
export type Workspace = Resource<WorkspaceAttributes>;

export interface AgentAttributes {
  name: string;
  status: string;
  concurrency: number;
  'running-jobs': number;
}
export type Agent = Resource<AgentAttributes>;

export interface StateVersionAttributes {
  serial: number;
  lineage: string;
}
export type StateVersion = Resource<StateVersionAttributes>;

export interface StateOutputAttributes {
  name: string;
  sensitive: boolean;
  type: unknown;
  value: unknown;
}
export type StateOutput = Resource<StateOutputAttributes>;

export interface Pool {
  readonly id: string;
  /** The pool token agents register with. */
  readonly token: string;
}

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

// ---------------------------------------------------------------------------
// API helpers

function describeResponse(response: { status: number; body: unknown }): string {
  return `HTTP ${response.status}: ${typeof response.body === 'string' ? response.body : JSON.stringify(response.body)}`;
}

/** Calls the API and asserts the status; returns the body. */
export async function apiCall<T>(
  server: ServerHandle,
  method: string,
  urlPath: string,
  body: unknown,
  expectedStatus: number,
): Promise<T> {
  const response = await server.api<T>(method, urlPath, body);
  assert.equal(response.status, expectedStatus, `${method} ${urlPath}: ${describeResponse(response)}`);
  return response.body;
}

export async function createPool(server: ServerHandle, name = `pool-${randomBytes(3).toString('hex')}`): Promise<Pool> {
  const pool = await apiCall<{ data: Resource<{ name: string }> }>(
    server,
    'POST',
    '/api/v2/organizations/default/agent-pools',
    { data: { type: 'agent-pools', attributes: { name } } },
    201,
  );
  const token = await apiCall<{ data: Resource<{ token: string }> }>(
    server,
    'POST',
    `/api/v2/agent-pools/${pool.data.id}/authentication-tokens`,
    { data: { type: 'authentication-tokens', attributes: { description: 'e2e' } } },
    201,
  );
  return { id: pool.data.id, token: token.data.attributes.token };
}

export interface WorkspaceOptions {
  readonly name?: string;
  readonly poolId: string;
  /** Default: true. */
  readonly autoApply?: boolean;
}

export async function createWorkspace(server: ServerHandle, options: WorkspaceOptions): Promise<Workspace> {
  const name = options.name ?? `ws-${randomBytes(4).toString('hex')}`;
  const created = await apiCall<{ data: Workspace }>(
    server,
    'POST',
    '/api/v2/organizations/default/workspaces',
    {
      data: {
        type: 'workspaces',
        attributes: { name, 'auto-apply': options.autoApply ?? true, 'agent-pool-id': options.poolId },
      },
    },
    201,
  );
  return created.data;
}

export async function getWorkspace(server: ServerHandle, workspaceId: string): Promise<Workspace> {
  return (await apiCall<{ data: Workspace }>(server, 'GET', `/api/v2/workspaces/${workspaceId}`, undefined, 200)).data;
}

export interface VariableInput {
  readonly key: string;
  readonly value: string;
  readonly category: 'terraform' | 'env';
  readonly hcl?: boolean;
  readonly sensitive?: boolean;
}

export async function createVariable(server: ServerHandle, workspaceId: string, variable: VariableInput): Promise<void> {
  await apiCall(
    server,
    'POST',
    `/api/v2/workspaces/${workspaceId}/vars`,
    { data: { type: 'vars', attributes: { hcl: false, sensitive: false, ...variable } } },
    201,
  );
}

/** Packs `files` (relative path → content) into a .tar.gz, in memory. */
export async function packFiles(files: Readonly<Record<string, string>>): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-e2e-config-'));
  try {
    await writeFiles(dir, files);
    const chunks: Buffer[] = [];
    const names = Object.keys(files).map((name) => name.split('/')[0] as string);
    for await (const chunk of createTar({ cwd: dir, gzip: true, portable: true }, [...new Set(names)].sort())) {
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
    return Buffer.concat(chunks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Creates a configuration version with these files and uploads it; returns its id. */
export async function uploadConfiguration(
  server: ServerHandle,
  workspaceId: string,
  files: Readonly<Record<string, string>>,
): Promise<string> {
  const created = await apiCall<{ data: Resource<{ 'upload-url': string }> }>(
    server,
    'POST',
    `/api/v2/workspaces/${workspaceId}/configuration-versions`,
    { data: { type: 'configuration-versions', attributes: {} } },
    201,
  );
  const uploadUrl = new URL(created.data.attributes['upload-url']);
  await apiCall(server, 'PUT', uploadUrl.pathname, await packFiles(files), 200);
  return created.data.id;
}

export interface RunOptions {
  readonly isDestroy?: boolean;
  readonly planOnly?: boolean;
  /** Unset: the workspace's setting. */
  readonly autoApply?: boolean;
  readonly message?: string;
}

export async function createRun(
  server: ServerHandle,
  workspaceId: string,
  configurationVersionId: string,
  options: RunOptions = {},
): Promise<Run> {
  const attributes: Record<string, unknown> = { message: options.message ?? 'e2e' };
  if (options.isDestroy !== undefined) attributes['is-destroy'] = options.isDestroy;
  if (options.planOnly !== undefined) attributes['plan-only'] = options.planOnly;
  if (options.autoApply !== undefined) attributes['auto-apply'] = options.autoApply;
  const created = await apiCall<{ data: Run }>(
    server,
    'POST',
    '/api/v2/runs',
    {
      data: {
        type: 'runs',
        attributes,
        relationships: {
          workspace: { data: { type: 'workspaces', id: workspaceId } },
          'configuration-version': { data: { type: 'configuration-versions', id: configurationVersionId } },
        },
      },
    },
    201,
  );
  return created.data;
}

export async function getRun(server: ServerHandle, runId: string): Promise<Run> {
  return (await apiCall<{ data: Run }>(server, 'GET', `/api/v2/runs/${runId}`, undefined, 200)).data;
}

/** POST /api/v2/runs/:id/actions/<action>, expecting 202. */
export async function runAction(
  server: ServerHandle,
  runId: string,
  action: 'apply' | 'discard' | 'cancel' | 'force-cancel',
): Promise<void> {
  await apiCall(server, 'POST', `/api/v2/runs/${runId}/actions/${action}`, undefined, 202);
}

export function relatedId(resource: Resource<unknown>, name: string): string {
  const id = resource.relationships?.[name]?.data?.id;
  assert.ok(id, `${resource.type} ${resource.id} has no ${name} relationship: ${JSON.stringify(resource.relationships)}`);
  return id;
}

export async function getPhase(server: ServerHandle, phaseId: string): Promise<Phase> {
  const kind = phaseId.startsWith('plan-') ? 'plans' : 'applies';
  return (await apiCall<{ data: Phase }>(server, 'GET', `/api/v2/${kind}/${phaseId}`, undefined, 200)).data;
}

/** The whole log of a plan (`plan-…`) or an apply (`apply-…`) so far. */
export async function readLog(server: ServerHandle, phaseId: string): Promise<string> {
  const kind = phaseId.startsWith('plan-') ? 'plans' : 'applies';
  const response = await server.api<string>('GET', `/api/v2/${kind}/${phaseId}/logs`);
  assert.equal(response.status, 200, `GET ${kind}/${phaseId}/logs: ${describeResponse(response)}`);
  return typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
}

/** Plan and apply logs of a run, for assertions. */
export async function runLogs(server: ServerHandle, run: Run): Promise<{ plan: string; apply: string }> {
  return { plan: await readLog(server, relatedId(run, 'plan')), apply: await readLog(server, relatedId(run, 'apply')) };
}

export async function listStateVersions(server: ServerHandle, workspaceId: string): Promise<StateVersion[]> {
  return (await apiCall<{ data: StateVersion[] }>(server, 'GET', `/api/v2/workspaces/${workspaceId}/state-versions`, undefined, 200))
    .data;
}

/** The current state version, or undefined when the workspace has no state. */
export async function currentStateVersion(server: ServerHandle, workspaceId: string): Promise<StateVersion | undefined> {
  const response = await server.api<{ data: StateVersion }>('GET', `/api/v2/workspaces/${workspaceId}/current-state-version`);
  if (response.status === 404) return undefined;
  assert.equal(response.status, 200, `current-state-version: ${describeResponse(response)}`);
  return response.body.data;
}

/** The state document of a state version, as the engine wrote it. */
export async function downloadState(server: ServerHandle, stateVersionId: string): Promise<TofuState> {
  const response = await server.api<TofuState>('GET', `/api/v2/state-versions/${stateVersionId}/download`);
  assert.equal(response.status, 200, `state download: ${describeResponse(response)}`);
  return response.body;
}

export interface TofuState {
  serial: number;
  lineage: string;
  outputs: Record<string, { value: unknown; type: unknown; sensitive?: boolean }>;
  resources: { type: string; name: string; instances: unknown[] }[];
}

export async function stateOutputs(server: ServerHandle, stateVersionId: string): Promise<StateOutput[]> {
  return (await apiCall<{ data: StateOutput[] }>(server, 'GET', `/api/v2/state-versions/${stateVersionId}/outputs`, undefined, 200))
    .data;
}

export async function listAgents(server: ServerHandle, poolId: string): Promise<Agent[]> {
  return (await apiCall<{ data: Agent[] }>(server, 'GET', `/api/v2/agent-pools/${poolId}/agents`, undefined, 200)).data;
}

// ---------------------------------------------------------------------------
// Waiting, with diagnostics

/** Logs of the processes involved, to attach to a failure message. */
export function processLogs(resources: readonly TestResource[]): string {
  return resources.map((resource) => `--- last lines of ${resource.logFile}\n${logTail(resource.logFile, 40)}\n---`).join('\n');
}

/** What a run looked like, with its logs and the process logs, for a failure message. */
export async function runDiagnostics(
  server: ServerHandle,
  runId: string,
  others: readonly TestResource[] = [],
): Promise<string> {
  const parts: string[] = [];
  try {
    const run = await getRun(server, runId);
    parts.push(`run ${runId}: ${JSON.stringify(run.attributes)}`);
    parts.push(`--- plan log\n${await readLog(server, relatedId(run, 'plan'))}`);
    parts.push(`--- apply log\n${await readLog(server, relatedId(run, 'apply'))}`);
  } catch (error) {
    parts.push(`(could not read run ${runId}: ${(error as Error).message})`);
  }
  parts.push(processLogs([server, ...others]));
  return parts.join('\n');
}

/**
 * Polls until `check` returns a value other than undefined; on timeout fails
 * with `describe()`'s text.
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  describe: () => Promise<string> | string,
  timeoutMs = defaultTimeoutMs,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${await describe()}`);
    await sleep(100);
  }
}

/**
 * Polls GET /api/v2/runs/:id until the run is in one of `statuses`. Fails at
 * once when it reaches a final status that is not wanted, or at the timeout;
 * either way with the run's logs and the server's (and `others'`) log tails.
 */
export async function waitForRunStatus(
  server: ServerHandle,
  runId: string,
  statuses: readonly RunStatus[],
  timeoutMs = defaultTimeoutMs,
  others: readonly TestResource[] = [],
): Promise<Run> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await getRun(server, runId);
    const status = run.attributes.status;
    if (statuses.includes(status)) return run;
    if (isFinalRunStatus(status)) {
      assert.fail(`run ${runId} ended ${status}, expected ${statuses.join(' or ')}\n${await runDiagnostics(server, runId, others)}`);
    }
    if (Date.now() > deadline) {
      assert.fail(
        `run ${runId} is still ${status} after ${timeoutMs / 1000} s, expected ${statuses.join(' or ')}\n` +
          (await runDiagnostics(server, runId, others)),
      );
    }
    await sleep(100);
  }
}

export async function waitForAgents(server: ServerHandle, poolId: string, count: number, others: readonly TestResource[] = []): Promise<Agent[]> {
  return waitUntil(
    `${count} agent(s) registered in pool ${poolId}`,
    async () => {
      const agents = await listAgents(server, poolId);
      return agents.length >= count ? agents : undefined;
    },
    () => processLogs([server, ...others]),
    30_000,
  );
}

// ---------------------------------------------------------------------------
// The cluster

export interface ClusterOptions {
  /** Agents to start (default 1); 0 starts none (start them with cluster.startAgent). */
  readonly agents?: number;
  /** OUTPOST_AGENT_CONCURRENCY of each agent (default: the agent's default, 1). */
  readonly concurrency?: number;
  /** Auto-apply of the workspace created (default true). */
  readonly autoApply?: boolean;
  readonly serverEnv?: Readonly<Record<string, string>>;
  readonly agentEnv?: Readonly<Record<string, string>>;
  /** The script the server and agents run: the sources unless given (benchmarks measure the shipped bin/outpost.js). */
  readonly entryPoint?: string;
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
  const server = await startServer({ backend, t, ...entry, ...(options.serverEnv ? { env: options.serverEnv } : {}) });
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

/** A temp dir removed when the test (or suite) ends. */
export async function tempDir(t: TestHooks, prefix = 'outpost-e2e-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `files` (relative path → content) under `dir`. */
export async function writeFiles(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

/**
 * The `name = "value"` lines of the Outputs section the engine prints at the
 * end of an apply (string outputs only; `<sensitive>` ones are left out).
 */
export function outputsFromApplyLog(log: string): Record<string, string> {
  const start = log.lastIndexOf('\nOutputs:\n');
  assert.ok(start >= 0, `the apply log has no Outputs section:\n${log}`);
  const outputs: Record<string, string> = {};
  for (const line of log.slice(start).split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_-]*) = "((?:[^"\\]|\\.)*)"$/.exec(line);
    if (match) outputs[match[1] as string] = JSON.parse(`"${match[2] as string}"`) as string;
  }
  return outputs;
}

/**
 * Fails if the server re-queued or gave up a job because its lease expired
 * (since `sinceOffset`, a length of server.output() taken earlier): in tests
 * where no agent dies, that means a job the server handed out never reached
 * an agent.
 */
export function assertNoJobLost(server: ServerHandle, sinceOffset = 0): void {
  const lost = server
    .output()
    .slice(sinceOffset)
    .split('\n')
    .filter((line) => line.includes('job lost its agent'));
  assert.deepEqual(lost, [], 'every job the server handed out reached an agent');
}

export interface CliResult {
  /** Exit code; null when a signal ended the process. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node src/cli/main.ts <args>` against the server with its admin token
 * (OUTPOST_URL / OUTPOST_TOKEN) and waits for it to exit; killed when the
 * test ends or after `timeoutMs`.
 */
export async function runCli(
  t: TestHooks,
  server: ServerHandle,
  args: readonly string[],
  options: { cwd?: string; env?: Readonly<Record<string, string>>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const command = cliCommand(args);
  const child = spawn(command.command, [...command.args], {
    cwd: options.cwd,
    env: { ...inheritedEnvironment(), OUTPOST_URL: server.url, OUTPOST_TOKEN: server.adminToken, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  }).finally(() => clearTimeout(timer));
  return { code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
}
