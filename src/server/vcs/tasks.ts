// The version control work queue. Whatever needs a provider (list a
// repository's refs, fetch a commit, post a commit status) is a task: the
// server's worker takes the tasks of providers it reaches itself, the VCS
// agents of a pool those of providers reached through that pool (over their
// own outbound connection). Each piece of work is queued once while it is
// outstanding (its dedupe key), taken under a lock that expires if the taker
// dies, and retried a few times before it fails for good.
import { createHash, randomUUID } from 'node:crypto';
import type { VcsTaskAssignment } from '../../protocol/vcs-api.ts';
import { cloneUrlOf } from '../../vcs/providers.ts';
import type { ServerContext } from '../context.ts';
import type { VcsTaskKind } from '../db/schema-vcs.ts';
import { newId } from '../ids.ts';
import * as repo from './repo.ts';
import { openCredentials } from './service.ts';

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

export type TaskPayload =
  | { kind: 'refs'; repository: string }
  | { kind: 'check'; repository: string }
  | { kind: 'fetch'; repository: string; sha: string; ref: string | null; submodules: boolean; compare_to: string | null }
  | { kind: 'status'; repository: string; sha: string; run_id: string; status: { state: CommitState; context: string; description: string; target_url: string } };

/** How long a taker holds a task before another may take it over: longer than a large fetch. */
export const taskLockMs = 10 * 60_000;
/** Attempts before a task fails for good; retries wait 5 s, then 20 s. */
export const taskAttempts = 3;
const retryDelaysMs = [5_000, 20_000];

export function retryDelayMs(attempts: number): number {
  return retryDelaysMs[Math.min(attempts - 1, retryDelaysMs.length - 1)] ?? 20_000;
}

function repositoryKey(repository: string): string {
  return createHash('sha256').update(repository.toLowerCase()).digest('hex').slice(0, 16);
}

/** Where a commit's archive is kept, once per provider, repository, commit and submodule setting: later runs of the commit reuse it. */
export function commitArchiveKey(providerId: string, repository: string, sha: string, submodules: boolean): string {
  return `vcs-commits/${providerId}/${repositoryKey(repository)}/${sha}${submodules ? '-submodules' : ''}.tar.gz`;
}

export function commitInfoKey(providerId: string, repository: string, sha: string): string {
  return `vcs-commits/${providerId}/${repositoryKey(repository)}/${sha}.json`;
}

function dedupeKeyOf(providerId: string, payload: TaskPayload): string {
  switch (payload.kind) {
    case 'refs':
      return `refs:${providerId}:${repositoryKey(payload.repository)}`;
    case 'check':
      // Every check is asked anew.
      return `check:${randomUUID()}`;
    case 'fetch':
      return `fetch:${providerId}:${repositoryKey(payload.repository)}:${payload.sha}:${payload.submodules ? 's' : 'n'}:${payload.compare_to ?? ''}`;
    case 'status':
      // One outstanding post per run: statuses reach the forge in the order the run went through them.
      return `status:${payload.run_id}`;
  }
}

/** Queues work for a provider unless the same work is outstanding; returns the new task's id, or undefined then. Wakes whoever serves the provider. */
export async function queueTask(ctx: ServerContext, provider: repo.ProviderRow, payload: TaskPayload): Promise<string | undefined> {
  const now = ctx.now();
  const id = newId('vcsk');
  const queued = await repo.insertTaskOnce(ctx.db, {
    id,
    provider_id: provider.id,
    kind: payload.kind satisfies VcsTaskKind,
    dedupe_key: dedupeKeyOf(provider.id, payload),
    payload: JSON.stringify(payload),
    status: 'queued',
    attempts: 0,
    agent_id: null,
    locked_until: null,
    next_attempt_at: now,
    error: null,
    result: null,
    created_at: now,
    updated_at: now,
  });
  if (!queued) return undefined;
  ctx.notifier.notify(provider.pool_id ? `vcs-pool:${provider.pool_id}` : 'vcs');
  return id;
}

/** Takes up to `max` due tasks for the server (poolId null) or a VCS agent of `poolId`. */
export async function takeDueTasks(ctx: ServerContext, poolId: string | null, agentId: string | null, max: number): Promise<repo.TaskRow[]> {
  const now = ctx.now();
  const taken: repo.TaskRow[] = [];
  for (const task of await repo.dueTasks(ctx.db, poolId, now, max)) {
    if (await repo.takeTask(ctx.db, task, agentId, now, taskLockMs)) taken.push({ ...task, status: 'running', agent_id: agentId, attempts: task.attempts + 1 });
  }
  return taken;
}

/** What the taker needs to do the task, credentials included (opened for this assignment only). */
export async function assignmentOf(ctx: ServerContext, task: repo.TaskRow): Promise<VcsTaskAssignment | undefined> {
  const provider = await repo.findProvider(ctx.db, task.provider_id);
  if (!provider) return undefined;
  const payload = JSON.parse(task.payload) as TaskPayload;
  const credentials = openCredentials(ctx, provider);
  const endpoint = { kind: provider.kind, url: provider.http_url ?? '', apiUrl: provider.api_url };
  switch (payload.kind) {
    case 'refs':
      return { kind: 'refs', task_id: task.id, remote: { kind: provider.kind, url: cloneUrlOf(endpoint, payload.repository), credentials } };
    case 'check':
      return {
        kind: 'check',
        task_id: task.id,
        endpoint: { kind: provider.kind, url: provider.http_url ?? '', api_url: provider.api_url },
        remote: { kind: provider.kind, url: cloneUrlOf(endpoint, payload.repository), credentials },
        repository: payload.repository,
      };
    case 'fetch':
      return {
        kind: 'fetch',
        task_id: task.id,
        remote: { kind: provider.kind, url: cloneUrlOf(endpoint, payload.repository), credentials },
        sha: payload.sha,
        ref: payload.ref,
        submodules: payload.submodules,
        compare_to: payload.compare_to,
        max_bytes: ctx.config.maxUploadMb * 1024 * 1024,
      };
    case 'status':
      return {
        kind: 'status',
        task_id: task.id,
        endpoint: { kind: provider.kind, url: provider.http_url ?? '', api_url: provider.api_url },
        credentials,
        repository: payload.repository,
        sha: payload.sha,
        status: payload.status,
      };
  }
}

export async function findRunningTask(ctx: ServerContext, taskId: string, agentId: string | null): Promise<repo.TaskRow | undefined> {
  const task = await repo.findTask(ctx.db, taskId);
  return task && task.status === 'running' && task.agent_id === agentId ? task : undefined;
}

export function payloadOf(task: repo.TaskRow): TaskPayload {
  return JSON.parse(task.payload) as TaskPayload;
}
