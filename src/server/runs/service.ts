// Runs: who may see and act on them, and the operations: create, confirm,
// discard, cancel, and what happens when a job ends. Each operation is one
// transaction; the state machine is in lifecycle.ts.
import type { Kysely } from 'kysely';
import { OutpostError } from '../../protocol/errors.ts';
import { activeJobStatuses, isActiveJobStatus, isFinalRunStatus, type JobKind, type RunStatus } from '../../protocol/statuses.ts';
import type { JobResult } from '../../protocol/agent-api.ts';
import { findConfigurationVersion } from '../configuration-versions/repo.ts';
import type { ServerContext } from '../context.ts';
import type { Database } from '../db/schema.ts';
import { newId } from '../ids.ts';
import * as jobsRepo from '../jobs/repo.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { deleteLocksOfRun } from '../state/repo.ts';
import { inTransaction, type Effects } from '../transaction.ts';
import { claimWorkspace, findWorkspace, lockWorkspaceRow, releaseWorkspace, type WorkspaceRow } from '../workspaces/repo.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import { afterPlan, afterUnsuccessfulJob, cancelableStatuses, confirmableStatuses, discardableStatuses, queuedStatusOf } from './lifecycle.ts';
import * as repo from './repo.ts';

/** A run the caller may see: one of a workspace of its organization. */
export async function requireRun(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.RunRow> {
  const run = await repo.findRun(ctx.db, id);
  const workspace = run ? await findWorkspace(ctx.db, run.workspace_id) : undefined;
  if (!run || workspace?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `run ${id} not found`);
  return run;
}

/** The runs of a workspace the caller may see (workspaces/service requireWorkspace), newest first. */
export async function listRuns(ctx: ServerContext, workspace: WorkspaceRow, limit: number): Promise<repo.RunRow[]> {
  return repo.listRuns(ctx.db, workspace.id, limit);
}

export interface RunRequest {
  workspaceId: string;
  configurationVersionId: string | undefined;
  message: string | undefined;
  isDestroy: boolean | undefined;
  planOnly: boolean | undefined;
  /** Unset: the workspace's setting. */
  autoApply: boolean | undefined;
}

/** A run a user asks for: of an uploaded configuration version of the workspace, which must have an agent pool. */
export async function requestRun(ctx: ServerContext, principal: ApiPrincipal, request: RunRequest): Promise<repo.RunRow> {
  const workspace = await requireWorkspace(ctx, principal, request.workspaceId);
  const cvId = request.configurationVersionId;
  if (!cvId) throw new OutpostError('validation_failed', 'a run needs a configuration-version relationship');
  const cv = await findConfigurationVersion(ctx.db, cvId);
  if (!cv || cv.workspace_id !== workspace.id) throw new OutpostError('not_found', `configuration version ${cvId} not found in this workspace`);
  if (cv.status !== 'uploaded') throw new OutpostError('conflict', `configuration version ${cv.id} is ${cv.status}; upload it first`);
  if (!workspace.pool_id) throw new OutpostError('validation_failed', `workspace ${workspace.name} has no agent pool; assign one first`);
  return createRun(ctx, {
    workspaceId: workspace.id,
    configurationVersionId: cv.id,
    message: request.message ?? 'Queued through the API',
    isDestroy: request.isDestroy ?? false,
    planOnly: request.planOnly ?? false,
    autoApply: request.autoApply ?? workspace.auto_apply === 1,
  });
}

/**
 * A run of a commit from version control (src/server/vcs decides who may
 * start one: a provider's verified webhook or a poll). It queues like any
 * run; a speculative one is plan-only and never holds the workspace.
 */
export async function queueRunOfCommit(ctx: ServerContext, input: { workspaceId: string; configurationVersionId: string; message: string; speculative: boolean }): Promise<repo.RunRow> {
  const workspace = await findWorkspace(ctx.db, input.workspaceId);
  if (!workspace) throw new OutpostError('not_found', `workspace ${input.workspaceId} not found`);
  if (!workspace.pool_id) throw new OutpostError('validation_failed', `workspace ${workspace.name} has no agent pool; assign one first`);
  return createRun(ctx, {
    workspaceId: workspace.id,
    configurationVersionId: input.configurationVersionId,
    message: input.message,
    isDestroy: false,
    planOnly: input.speculative,
    autoApply: !input.speculative && workspace.auto_apply === 1,
  });
}

interface CreateRunInput {
  workspaceId: string;
  configurationVersionId: string;
  message: string;
  isDestroy: boolean;
  planOnly: boolean;
  autoApply: boolean;
}

async function createRun(ctx: ServerContext, input: CreateRunInput): Promise<repo.RunRow> {
  return inTransaction(ctx, async (trx, effects) => {
    const now = ctx.now();
    const run = {
      id: newId('run'),
      workspace_id: input.workspaceId,
      configuration_version_id: input.configurationVersionId,
      status: 'pending' as RunStatus,
      message: input.message,
      is_destroy: input.isDestroy ? 1 : 0,
      plan_only: input.planOnly ? 1 : 0,
      auto_apply: input.autoApply ? 1 : 0,
      has_changes: null,
      resource_additions: null,
      resource_changes: null,
      resource_destructions: null,
      error_code: null,
      error_message: null,
      status_timestamps: JSON.stringify({ 'pending-at': new Date(now).toISOString() }),
      created_at: now,
      updated_at: now,
    } as const;
    if (!input.planOnly) await lockWorkspaceRow(trx, ctx.dialect, input.workspaceId);
    await repo.insertRun(trx, run);
    const startsNow = input.planOnly || (await claimWorkspace(trx, input.workspaceId, run.id, now));
    if (startsNow) await queueJob(ctx, trx, effects, run, 'plan');
    effects.notify(`run:${run.id}`);
    return (await repo.findRun(trx, run.id))!;
  });
}

/** Puts a phase's job in the pool's queue and moves the run to *_queued. */
async function queueJob(ctx: ServerContext, trx: Kysely<Database>, effects: Effects, run: repo.RunRow, kind: JobKind): Promise<void> {
  const workspace = await findWorkspace(trx, run.workspace_id);
  if (!workspace?.pool_id) {
    throw new OutpostError('validation_failed', 'the workspace has no agent pool: set one with `outpost workspace` or the API before queueing runs');
  }
  const now = ctx.now();
  const from: RunStatus[] = kind === 'plan' ? ['pending'] : ['planning', 'planned'];
  if (!(await repo.transitionRun(trx, run, from, queuedStatusOf(kind), now))) {
    throw new OutpostError('conflict', `run ${run.id} changed status concurrently`);
  }
  await jobsRepo.insertQueuedJob(trx, { id: newId('job'), runId: run.id, poolId: workspace.pool_id, kind, createdAt: now });
  // The agent that ran the plan kept its working directory for the apply
  // (src/agent/plan-workdirs.ts): it is told first, and the rest of the pool
  // a moment later, so that it usually claims the apply and skips a download
  // and an init. If it is gone or busy, the others take the job after that moment.
  const planAgent = kind === 'apply' ? (await jobsRepo.findPhaseJob(trx, run.id, 'plan'))?.agent_id : null;
  if (planAgent) effects.notify(`agent:${planAgent}`);
  effects.notify(`pool:${workspace.pool_id}`, { afterMs: planAgent ? applyHeadStartMs : 0 });
  // A serverless pool's webhook is called at once when no agent is free.
  effects.notify('webhooks');
}

/** How long the plan's agent has the apply to itself: far longer than its next poll takes, far shorter than anyone would notice. */
const applyHeadStartMs = 500;

/** Moves a run to a final status and hands its workspace to the next pending run. */
async function finishRun(
  ctx: ServerContext,
  trx: Kysely<Database>,
  effects: Effects,
  run: repo.RunRow,
  status: RunStatus,
  error?: { code: string; message: string },
): Promise<void> {
  const now = ctx.now();
  if (run.plan_only === 0) await lockWorkspaceRow(trx, ctx.dialect, run.workspace_id);
  const moved = await repo.transitionRun(trx, run, [run.status], status, now, error ? { error_code: error.code, error_message: error.message } : {});
  if (!moved) throw new OutpostError('conflict', `run ${run.id} changed status concurrently`);
  effects.notify(`run:${run.id}`);
  effects.notify(`log:${run.id}`);
  // A lock left by a killed engine must not block the workspace forever.
  await deleteLocksOfRun(trx, run.id);
  if (run.plan_only === 0 && (await releaseWorkspace(trx, run.workspace_id, run.id, now))) {
    const next = await repo.nextPendingRun(trx, run.workspace_id);
    // Ending this run must not fail because the next one cannot start.
    const workspace = await findWorkspace(trx, run.workspace_id);
    if (next && !workspace?.pool_id) {
      ctx.logger.warn({ run: next.id, workspace: run.workspace_id }, 'the next run stays pending: its workspace has no agent pool');
    } else if (next && (await claimWorkspace(trx, run.workspace_id, next.id, now))) {
      await queueJob(ctx, trx, effects, next, 'plan');
    }
  }
}

async function requireRunIn(trx: Kysely<Database>, runId: string, allowed: readonly RunStatus[], action: string): Promise<repo.RunRow> {
  const run = await repo.findRun(trx, runId);
  if (!run) throw new OutpostError('not_found', `run ${runId} not found`);
  if (!allowed.includes(run.status)) {
    throw new OutpostError('conflict', `run ${run.id} is ${run.status}; it can be ${action} only when ${allowed.join(' or ')}`);
  }
  return run;
}

export async function confirmRun(ctx: ServerContext, principal: ApiPrincipal, runId: string): Promise<void> {
  const { id } = await requireRun(ctx, principal, runId);
  await inTransaction(ctx, async (trx, effects) => {
    const run = await requireRunIn(trx, id, confirmableStatuses, 'applied');
    await queueJob(ctx, trx, effects, run, 'apply');
    effects.notify(`run:${run.id}`);
  });
}

export async function discardRun(ctx: ServerContext, principal: ApiPrincipal, runId: string): Promise<void> {
  const { id } = await requireRun(ctx, principal, runId);
  await inTransaction(ctx, async (trx, effects) => {
    const run = await requireRunIn(trx, id, discardableStatuses, 'discarded');
    await finishRun(ctx, trx, effects, run, 'discarded');
  });
}

/**
 * Cancel: a queued job is withdrawn at once; a running one is signalled and
 * the run ends when the agent reports. Force-cancel ends the run now and
 * fences the job off: the agent kills the engine, and anything it still
 * sends is refused because the lease and job token are no longer current.
 */
export async function cancelRun(ctx: ServerContext, principal: ApiPrincipal, runId: string, force: boolean): Promise<void> {
  const { id } = await requireRun(ctx, principal, runId);
  await inTransaction(ctx, async (trx, effects) => {
    const run = await requireRunIn(trx, id, cancelableStatuses, force ? 'force-canceled' : 'canceled');
    const status: RunStatus = force ? 'force_canceled' : 'canceled';
    if (run.status === 'pending') return finishRun(ctx, trx, effects, run, status);
    const kind: JobKind = run.status === 'plan_queued' || run.status === 'planning' ? 'plan' : 'apply';
    const job = await jobsRepo.findPhaseJob(trx, run.id, kind);
    const now = ctx.now();
    if (job && (await jobsRepo.updateJob(trx, job.id, { status: 'canceled', finished_at: now }, ['queued']))) {
      return finishRun(ctx, trx, effects, run, status);
    }
    if (!job || !isActiveJobStatus(job.status)) throw new OutpostError('conflict', `run ${run.id} has no job to cancel`);
    const signalled = await jobsRepo.updateJob(trx, job.id, { signal: force ? 'force_cancel' : 'cancel', signal_delivered: 0 }, activeJobStatuses);
    if (!signalled) throw new OutpostError('conflict', `run ${run.id} changed status concurrently; try again`);
    if (job.agent_id) effects.notify(`agent:${job.agent_id}`);
    if (force) {
      const fenced = await jobsRepo.updateJob(trx, job.id, { status: 'canceled', finished_at: now, error_code: null, error_message: 'force-canceled by a user' }, activeJobStatuses);
      if (!fenced) throw new OutpostError('conflict', `run ${run.id} changed status concurrently; try again`);
      await finishRun(ctx, trx, effects, run, status);
    }
  });
}

export type JobOutcome = 'succeeded' | 'failed' | 'canceled' | 'lost';

/**
 * Called once a job has reached its final status (inside the same
 * transaction): moves the run on according to the job's kind and outcome.
 */
export async function onJobEnded(
  ctx: ServerContext,
  trx: Kysely<Database>,
  effects: Effects,
  job: jobsRepo.JobRow,
  outcome: JobOutcome,
  error?: { code: string; message: string },
): Promise<void> {
  const run = await repo.findRun(trx, job.run_id);
  if (!run || isFinalRunStatus(run.status)) return;
  if (outcome !== 'succeeded') {
    return finishRun(ctx, trx, effects, run, afterUnsuccessfulJob(outcome, job.signal === 'force_cancel'), error);
  }
  const result = job.result ? (JSON.parse(job.result) as JobResult) : undefined;
  if (!result || result.outcome !== 'succeeded') {
    return finishRun(ctx, trx, effects, run, 'errored', { code: 'engine_failed', message: 'the job operation ended without reporting a result' });
  }
  const counts = {
    resource_additions: result.resource_additions ?? 0,
    resource_changes: result.resource_changes ?? 0,
    resource_destructions: result.resource_destructions ?? 0,
  };
  if (job.kind === 'apply') {
    await repo.updateRun(trx, run.id, counts);
    return finishRun(ctx, trx, effects, run, 'applied');
  }
  const hasChanges = result.has_changes ?? false;
  await repo.updateRun(trx, run.id, { ...counts, has_changes: hasChanges ? 1 : 0 });
  const next = afterPlan(run, hasChanges);
  if (next === 'planned_and_finished') return finishRun(ctx, trx, effects, run, next);
  if (next === 'apply_queued') return queueJob(ctx, trx, effects, run, 'apply');
  await repo.transitionRun(trx, run, ['planning'], 'planned', ctx.now());
  effects.notify(`run:${run.id}`);
  effects.notify(`log:${run.id}`);
}
