// The user API (/api/v2) as end-to-end tests call it: create pools,
// workspaces, variables, configuration versions and runs, and read runs,
// phases, logs, state and agents. Answers are parsed with the protocol's
// resource schemas (src/protocol/api-resources.ts), so every test that reads
// a resource also checks the server presents it as documented; a status
// other than the one expected fails with the answer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create as createTar } from 'tar';
import {
  agentResource,
  applyResource,
  documentOf,
  listDocumentOf,
  planResource,
  relatedId as relatedIdOrUndefined,
  runResource,
  stateOutputResource,
  stateVersionResource,
  workspaceResource,
  type Agent,
  type Phase,
  type Resource as ProtocolResource,
  type Run,
  type StateOutput,
  type StateVersion,
  type Workspace,
} from '../../src/protocol/api-resources.ts';
import type { ServerHandle } from './cluster.ts';
import { writeFiles } from './files.ts';

export type { RunStatus } from '../../src/protocol/statuses.ts';

/** A resource of any type with attributes `A`, for tests that read an attribute or two. */
export type Resource<A> = ProtocolResource<string, A>;
export type { Agent, Phase, Run, StateOutput, StateVersion, Workspace };
export type RunAttributes = Run['attributes'];

export interface Pool {
  readonly id: string;
  /** The pool token agents register with. */
  readonly token: string;
}

export function describeResponse(response: { status: number; body: unknown }): string {
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

/** A pool with a token; `kind` vcs makes its agents relay version control work. */
export async function createPool(server: ServerHandle, name = `pool-${randomBytes(3).toString('hex')}`, kind: 'runner' | 'vcs' = 'runner'): Promise<Pool> {
  const pool = await apiCall<{ data: Resource<{ name: string }> }>(
    server,
    'POST',
    '/api/v2/organizations/default/agent-pools',
    { data: { type: 'agent-pools', attributes: { name, kind } } },
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
  return workspaceResource.parse(created.data);
}

export async function getWorkspace(server: ServerHandle, workspaceId: string): Promise<Workspace> {
  return documentOf(workspaceResource).parse(await apiCall(server, 'GET', `/api/v2/workspaces/${workspaceId}`, undefined, 200)).data;
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
  return runResource.parse(created.data);
}

export async function getRun(server: ServerHandle, runId: string): Promise<Run> {
  return documentOf(runResource).parse(await apiCall(server, 'GET', `/api/v2/runs/${runId}`, undefined, 200)).data;
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
  const id = relatedIdOrUndefined(resource, name);
  assert.ok(id, `${resource.type} ${resource.id} has no ${name} relationship: ${JSON.stringify(resource.relationships)}`);
  return id;
}

export async function getPhase(server: ServerHandle, phaseId: string): Promise<Phase> {
  const kind = phaseId.startsWith('plan-') ? 'plans' : 'applies';
  const schema = kind === 'plans' ? planResource : applyResource;
  return documentOf(schema).parse(await apiCall(server, 'GET', `/api/v2/${kind}/${phaseId}`, undefined, 200)).data;
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
  return listDocumentOf(stateVersionResource).parse(await apiCall(server, 'GET', `/api/v2/workspaces/${workspaceId}/state-versions`, undefined, 200))
    .data;
}

/** The current state version, or undefined when the workspace has no state. */
export async function currentStateVersion(server: ServerHandle, workspaceId: string): Promise<StateVersion | undefined> {
  const response = await server.api<{ data: StateVersion }>('GET', `/api/v2/workspaces/${workspaceId}/current-state-version`);
  if (response.status === 404) return undefined;
  assert.equal(response.status, 200, `current-state-version: ${describeResponse(response)}`);
  return documentOf(stateVersionResource).parse(response.body).data;
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
  return listDocumentOf(stateOutputResource).parse(await apiCall(server, 'GET', `/api/v2/state-versions/${stateVersionId}/outputs`, undefined, 200))
    .data;
}

export async function listAgents(server: ServerHandle, poolId: string): Promise<Agent[]> {
  return listDocumentOf(agentResource).parse(await apiCall(server, 'GET', `/api/v2/agent-pools/${poolId}/agents`, undefined, 200)).data;
}

