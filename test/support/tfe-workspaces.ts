// Workspaces and runs as TFE's API shows them to its clients, for the tests
// of the tofu CLI: attributes an Outpost-only client does not use (tags,
// execution mode, a run's actions and source) are read from the raw
// documents, so a test fails on the attribute that is missing rather than on
// a schema.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeResponse } from './api-calls.ts';
import type { ServerHandle, TestHooks } from './cluster.ts';
import { tempDir, writeFiles } from './files.ts';
import { organization, type TofuCli } from './tofu-cloud.ts';

export interface RawResource {
  readonly id: string;
  readonly type: string;
  readonly attributes: Record<string, unknown>;
  readonly relationships?: Record<string, { data?: { id: string; type: string } | { id: string; type: string }[] | null }>;
}

export interface TfeWorkspaceOptions {
  readonly name?: string;
  /** The pool agent-mode runs go to; none for local execution. */
  readonly poolId?: string;
  /** Default: agent. */
  readonly executionMode?: 'agent' | 'local';
  /** Default: false, so an apply asks for confirmation unless -auto-approve. */
  readonly autoApply?: boolean;
  readonly tags?: readonly string[];
}

/** Creates a workspace through TFE's attributes; returns its document. */
export async function createTfeWorkspace(server: ServerHandle, options: TfeWorkspaceOptions): Promise<RawResource> {
  const attributes: Record<string, unknown> = {
    name: options.name ?? `ws-${randomBytes(4).toString('hex')}`,
    'execution-mode': options.executionMode ?? 'agent',
    'auto-apply': options.autoApply ?? false,
  };
  if (options.poolId !== undefined) attributes['agent-pool-id'] = options.poolId;
  if (options.tags !== undefined) attributes['tag-names'] = options.tags;
  const response = await server.api<{ data: RawResource }>('POST', `/api/v2/organizations/${organization}/workspaces`, { data: { type: 'workspaces', attributes } });
  assert.equal(response.status, 201, `creating workspace ${JSON.stringify(attributes)}: ${describeResponse(response)}`);
  return response.body.data;
}

export async function readWorkspace(server: ServerHandle, workspaceId: string): Promise<RawResource> {
  const response = await server.api<{ data: RawResource }>('GET', `/api/v2/workspaces/${workspaceId}`);
  assert.equal(response.status, 200, `GET workspaces/${workspaceId}: ${describeResponse(response)}`);
  return response.body.data;
}

export async function readRun(server: ServerHandle, runId: string): Promise<RawResource> {
  const response = await server.api<{ data: RawResource }>('GET', `/api/v2/runs/${runId}`);
  assert.equal(response.status, 200, `GET runs/${runId}: ${describeResponse(response)}`);
  return response.body.data;
}

/** The id a to-one relationship points at, or undefined. */
export function relatedTo(resource: RawResource, name: string): string | undefined {
  const data = resource.relationships?.[name]?.data;
  return data && !Array.isArray(data) ? data.id : undefined;
}

/** Run ids of the workspace, newest first. */
export async function workspaceRunIds(server: ServerHandle, workspaceId: string): Promise<string[]> {
  const response = await server.api<{ data: RawResource[] }>('GET', `/api/v2/workspaces/${workspaceId}/runs`);
  assert.equal(response.status, 200, `GET workspaces/${workspaceId}/runs: ${describeResponse(response)}`);
  return response.body.data.map((run) => run.id);
}

/** How many state versions the workspace has. */
export async function stateVersionCount(server: ServerHandle, workspaceId: string): Promise<number> {
  const response = await server.api<{ data: unknown[] }>('GET', `/api/v2/workspaces/${workspaceId}/state-versions`);
  assert.equal(response.status, 200, `GET workspaces/${workspaceId}/state-versions: ${describeResponse(response)}`);
  return response.body.data.length;
}

/** TFE's workspace lock, as another user (or the UI) takes it. */
export async function lockWorkspace(server: ServerHandle, workspaceId: string, reason: string): Promise<void> {
  const response = await server.api('POST', `/api/v2/workspaces/${workspaceId}/actions/lock`, { reason });
  assert.equal(response.status, 200, `POST workspaces/${workspaceId}/actions/lock: ${describeResponse(response)}`);
}

/**
 * Samples the workspace's `current-run` and `locked` every 100 ms until
 * stopped: what a client listing workspaces would have seen meanwhile.
 */
export function watchWorkspace(server: ServerHandle, workspaceId: string): { stop(): Promise<{ currentRuns: Set<string>; locked: boolean[] }> } {
  const currentRuns = new Set<string>();
  const locked: boolean[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const workspace = await readWorkspace(server, workspaceId);
      const current = relatedTo(workspace, 'current-run');
      if (current !== undefined) currentRuns.add(current);
      locked.push(workspace.attributes.locked === true);
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { currentRuns, locked };
    },
  };
}

/**
 * The agent's log line saying it claimed a job of `runId` of `kind`: the run
 * went to the workspace's pool and this agent ran it with the real OpenTofu.
 */
export function claimedBy(agentLog: string, runId: string, kind: 'plan' | 'apply'): boolean {
  return agentLog.split('\n').some((line) => line.includes('"msg":"job claimed"') && line.includes(`"run":"${runId}"`) && line.includes(`"kind":"${kind}"`));
}

/**
 * A temp working directory with `files` (a `cloud` block or `backend
 * "remote"` among them) after a successful `tofu init -input=false`.
 */
export async function initializedWorkdir(
  t: TestHooks,
  tofu: TofuCli,
  files: Readonly<Record<string, string>>,
  options: { readonly env?: Readonly<Record<string, string>>; readonly backend?: 'cloud' | 'remote' } = {},
): Promise<string> {
  const dir = await tempDir(t, 'outpost-tofu-work-');
  await writeFiles(dir, files);
  const init = await tofu.run(dir, ['init', '-input=false'], options.env ? { env: options.env } : {});
  assert.equal(init.code, 0, init.describe());
  if (options.backend === 'remote') {
    assert.match(init.stdout, /Successfully configured the backend "remote"!/, init.describe());
  } else {
    assert.match(init.stdout, /Initializing cloud backend\.\.\./, init.describe());
    assert.match(init.stdout, /Cloud backend has been successfully initialized!/, init.describe());
  }
  return dir;
}
