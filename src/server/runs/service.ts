// Runs: who may see and act on them, and the operations: create, confirm,
// discard, cancel, and what happens when a job ends. Each operation is one
// transaction; the state machine is in lifecycle.ts.
import type { Kysely } from 'kysely';
import { OutpostError } from '../../protocol/errors.ts';
import { activeJobStatuses, isActiveJobStatus, isFinalRunStatus, type JobKind, type RunStatus } from '../../protocol/statuses.ts';
import type { JobResult } from '../../protocol/agent-api.ts';
import { findConfigurationVersion, latestUploaded } from '../configuration-versions/repo.ts';
import type { ServerContext } from '../context.ts';
import type { Database } from '../db/schema.ts';
import { newId } from '../ids.ts';
import * as jobsRepo from '../jobs/repo.ts';
import { requireOrganization, type ApiPrincipal } from '../organizations/service.ts';
import { deleteLocksOfRun } from '../state/repo.ts';
import { lockHolderOf } from '../state/workspace-lock.ts';
import { inTransaction, type Effects } from '../transaction.ts';
import { claimWorkspace, findWorkspace, lockWorkspaceRow, releaseWorkspace, type WorkspaceRow } from '../workspaces/repo.ts';
import { requireWorkspace } from '../workspaces/service.ts';
import { afterPlan, afterUnsuccessfulJob, cancelableStatuses, confirmableStatuses, discardableStatuses, queuedStatusOf } from './lifecycle.ts';
import { storedRunOptions, type RunOptions } from './options.ts';
import * as repo from './repo.ts';

/** A run the caller may see: one of a workspace of its organization. */
export async function requireRun(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.RunRow> {
  const run = await repo.findRun(ctx.db, id);
  const workspace = run ? await findWorkspace(ctx.db, run.workspace_id) : undefined;
  if (!run || workspace?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `run ${id} not found`);
  return run;
}

/** A run by id, for a caller that already holds its workspace (a workspace's current run). */
export async function findRunById(ctx: ServerContext, id: string): Promise<repo.RunRow | undefined> {
  return repo.findRun(ctx.db, id);
}

/** The runs of a workspace the caller may see (workspaces/service requireWorkspace), newest first; the newest 10 000 at most. */
export async function listRuns(ctx: ServerContext, workspace: WorkspaceRow): Promise<repo.RunRow[]> {
  return repo.listRuns(ctx.db, workspace.id, 10_000);
}

const waitingStatuses: readonly RunStatus[] = ['pending', 'plan_queued', 'apply_queued'];
const workingStatuses: readonly RunStatus[] = ['planning', 'applying'];

/** The organization's runs that wait or work (TFE: runs/queue), oldest first; the first 10 000. */
export async function runQueueOf(ctx: ServerContext, principal: ApiPrincipal, org: string): Promise<repo.RunRow[]> {
  const { id } = await requireOrganization(ctx, principal, org);
  return repo.listRunsOfOrganization(ctx.db, id, [...waitingStatuses, ...workingStatuses], 10_000);
}

/** How many of the organization's runs wait and how many work (TFE: organization capacity). */
export async function runCapacityOf(ctx: ServerContext, principal: ApiPrincipal, org: string): Promise<{ pending: number; running: number }> {
  const queue = await runQueueOf(ctx, principal, org);
  return { pending: queue.filter((run) => waitingStatuses.includes(run.status)).length, running: queue.filter((run) => workingStatuses.includes(run.status)).length };
}

export interface RunRequest {
  workspaceId: string;
  configurationVersionId: string | undefined;
  message: string | undefined;
  isDestroy: boolean | undefined;
  planOnly: boolean | undefined;
  /** Unset: the workspace's setting. */
  autoApply: boolean | undefined;
  /** TFE's name of who asked: `tfe-api`, or `tfe-cli` for the tofu CLI. */
  source: string;
  options: Partial<RunOptions>;
}

/** A run a user asks for: of an uploaded configuration version of the workspace, which must have an agent pool. */
export async function requestRun(ctx: ServerContext, principal: ApiPrincipal, request: RunRequest): Promise<repo.RunRow> {
  const workspace = await requireWorkspace(ctx, principal, request.workspaceId);
  const cvId = request.configurationVersionId;
  // Without one, TFE runs the workspace's newest uploaded configuration.
  const cv = cvId ? await findConfigurationVersion(ctx.db, cvId) : await latestUploaded(ctx.db, workspace.id);
  if (!cvId && !cv) throw new OutpostError('validation_failed', `workspace ${workspace.name} has no uploaded configuration version; upload one or name it in the configuration-version relationship`);
  if (!cv || cv.workspace_id !== workspace.id) throw new OutpostError('not_found', `configuration version ${cvId} not found in this workspace`);
  if (cv.status !== 'uploaded') throw new OutpostError('conflict', `configuration version ${cv.id} is ${cv.status}; upload it first`);
  requireRemoteExecution(workspace);
  // A speculative configuration version (what `tofu plan` uploads) only ever plans.
  const planOnly = cv.speculative === 1 || (request.planOnly ?? false);
  // A run could not write the state while a user holds the workspace's lock
  // (TFE queues it; Outpost says so now rather than fail at the apply).
  if (!planOnly && (await lockHolderOf(ctx, workspace.id))?.kind === 'user') {
    throw new OutpostError('conflict', `workspace ${workspace.name} is locked by a user; unlock it before queueing a run that may apply (plans are fine)`);
  }
  return createRun(ctx, {
    workspaceId: workspace.id,
    configurationVersionId: cv.id,
    message: request.message ?? 'Queued through the API',
    isDestroy: request.isDestroy ?? false,
    planOnly,
    autoApply: !planOnly && (request.autoApply ?? workspace.auto_apply === 1),
    source: request.source,
    planOptions: storedRunOptions(ctx, request.options),
  });
}

/** Runs need somewhere to execute: a workspace in local mode runs in the CLI, and one without a pool nowhere. */
function requireRemoteExecution(workspace: WorkspaceRow): void {
  if (workspace.execution_mode === 'local') {
    throw new OutpostError('conflict', `workspace ${workspace.name} is in local execution mode: runs happen in the CLI, and only its state and lock live here`);
  }
  if (!workspace.pool_id) throw new OutpostError('validation_failed', `workspace ${workspace.name} has no agent pool; assign one first`);
}

/** Refuses, before anything is stored, an upload whose auto-queued run could not be queued (local mode, no pool). */
export async function requireRunsCanQueue(ctx: ServerContext, workspaceId: string): Promise<void> {
  const workspace = await findWorkspace(ctx.db, workspaceId);
  if (!workspace) throw new OutpostError('not_found', `workspace ${workspaceId} not found`);
  requireRemoteExecution(workspace);
}

/** The run an upload to an auto-queuing configuration version queues (TFE's `auto-queue-runs`). */
export async function queueRunOfUpload(ctx: ServerContext, cv: { id: string; workspace_id: string; speculative: number }): Promise<repo.RunRow> {
  const workspace = await findWorkspace(ctx.db, cv.workspace_id);
  if (!workspace) throw new OutpostError('not_found', `workspace ${cv.workspace_id} not found`);
  requireRemoteExecution(workspace);
  const planOnly = cv.speculative === 1;
  return createRun(ctx, {
    workspaceId: workspace.id,
    configurationVersionId: cv.id,
    message: 'Queued by the upload of a configuration version',
    isDestroy: false,
    planOnly,
    autoApply: !planOnly && workspace.auto_apply === 1,
    source: 'tfe-configuration-version',
    planOptions: null,
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
  requireRemoteExecution(workspace);
  return createRun(ctx, {
    workspaceId: workspace.id,
    configurationVersionId: input.configurationVersionId,
    message: input.message,
    isDestroy: false,
    planOnly: input.speculative,
    autoApply: !input.speculative && workspace.auto_apply === 1,
    source: 'tfe-configuration-version',
    planOptions: null,
  });
}

interface CreateRunInput {
  workspaceId: string;
  configurationVersionId: string;
  message: string;
  isDestroy: boolean;
  planOnly: boolean;
  autoApply: boolean;
  source: string;
  /** runs/options.ts storedRunOptions. */
  planOptions: string | null;
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
      source: input.source,
      plan_options: input.planOptions,
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
