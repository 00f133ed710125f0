// The agent side of the job lifecycle: claim, start, result, finish, leases
// and signals, and what happens to a job its agent let go of. Job: queued →
// leased → running → succeeded | failed | canceled | lost
// (docs/architecture.md, "The life of a run"; docs/reliability.md for lost
// agents).
import type { Kysely } from 'kysely';
import { OutpostError } from '../../protocol/errors.ts';
import type { JobAssignment, JobFinishRequest, JobResult, JobSignal, JobSpec, RunningJob } from '../../protocol/agent-api.ts';
import { activeJobStatuses, finalJobStatuses, isActiveJobStatus, type JobStatus } from '../../protocol/statuses.ts';
import type { AgentRow } from '../agents/repo.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import type { Database } from '../db/schema.ts';
import { hashToken, newId, newToken } from '../ids.ts';
import { findRun, transitionRun, type RunRow } from '../runs/repo.ts';
import { queuedStatusOf, runningStatusOf } from '../runs/lifecycle.ts';
import { onJobEnded } from '../runs/service.ts';
import { deleteLocksOfJob } from '../state/repo.ts';
import { inTransaction, type Effects } from '../transaction.ts';
import { variablesForJob } from '../variables/service.ts';
import { jobOptionsOf } from '../runs/options.ts';
import { findWorkspace, type WorkspaceRow } from '../workspaces/repo.ts';
import * as repo from './repo.ts';

/** Claims up to `slots` queued jobs of the agent's pool, oldest first, in one statement; with `onlyJob`, that job or nothing. */
export async function claimJobs(ctx: ServerContext, agent: AgentRow, slots: number, onlyJob?: string): Promise<JobAssignment[]> {
  if (slots <= 0) return [];
  // A lease and a job token for each slot; the claim uses as many as it finds jobs.
  const offered = Array.from({ length: onlyJob === undefined ? slots : 1 }, () => ({ leaseId: newId('lease'), token: newToken('job') }));
  const tokenOf = new Map(offered.map((lease) => [lease.leaseId, lease.token]));
  const now = ctx.now();
  const claimed = await repo.claimQueuedJobs(ctx.db, ctx.dialect, agent.pool_id, {
    agentId: agent.id,
    expiresAt: now + ctx.config.leaseTimeout,
    now,
    leases: offered.map((lease) => ({ leaseId: lease.leaseId, tokenHash: hashToken(lease.token) })),
    onlyJob,
  });
  // In queue order, as the agent has always received them.
  claimed.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return claimed.map((job) => ({
    job_id: job.id,
    lease_id: job.lease_id!,
    run_id: job.run_id,
    kind: job.kind,
    job_token: tokenOf.get(job.lease_id!)!,
    engine: { name: job.engine, version: job.engine_version },
    log_offset: job.log_size,
  }));
}

/**
 * Why a single-run agent started for `jobId` will never claim it (another
 * agent holds it, it ended, it is not of the agent's pool), or undefined
 * while it is queued: the agent then exits at once instead of idling.
 */
export async function whyJobIsNotClaimable(ctx: ServerContext, agent: AgentRow, jobId: string): Promise<string | undefined> {
  const job = await repo.findJob(ctx.db, jobId);
  if (!job || job.pool_id !== agent.pool_id) return `job ${jobId} is not a job of this agent's pool`;
  if (job.status === 'queued') return undefined;
  if (job.agent_id === agent.id) return undefined;
  return isActiveJobStatus(job.status) ? `job ${jobId} is held by another agent` : `job ${jobId} has ended (${job.status})`;
}

/** Puts back jobs claimed for a poll whose caller hung up before the answer: they ran nothing. */
export async function returnClaims(ctx: ServerContext, assignments: readonly JobAssignment[]): Promise<void> {
  for (const assignment of assignments) {
    const job = await repo.findJob(ctx.db, assignment.job_id);
    if (job?.lease_id === assignment.lease_id) await giveBack(ctx, job, 'the polling agent went away');
  }
}

/**
 * Jobs leased to this agent before its poll began that the poll does not
 * list as its own were never received: the answer that carried them was
 * lost on the way (a connection cut after the claim), or the agent gave
 * them up before starting them. Each is queued again at once, plan or
 * apply alike (a job that never started changed nothing), instead of
 * waiting for its lease to lapse. Only a poll may say so: an agent opens
 * its next poll after it has taken in the previous answer, so that poll
 * lists every job it received, while a heartbeat travels beside the poll
 * and may have left before an answer arrived (docs/protocol.md, "Claiming
 * work"). An agent that deregisters gives back all it never started: its
 * session is dead, so it can start nothing more.
 */
export async function handBackUnreceived(
  ctx: ServerContext,
  agentId: string,
  held: readonly RunningJob[],
  claimedBefore: number,
  cause = 'its agent never received it',
): Promise<void> {
  for (const job of await repo.leasedJobsNotHeld(ctx.db, agentId, held, claimedBefore)) await giveBack(ctx, job, cause);
}

/** Queues an unstarted job again (or ends it canceled when a cancel is pending); a job that started in the meantime is left alone. */
async function giveBack(ctx: ServerContext, job: repo.JobRow, cause: string): Promise<void> {
  try {
    await inTransaction(ctx, (trx, effects) => loseJob(ctx, trx, effects, job, { cause, unreceived: true }));
  } catch (error) {
    ctx.logger.error({ err: error, job: job.id, run: job.run_id }, 'could not return a claim to the queue; its lease will lapse');
  }
}

async function requireLease(db: Kysely<Database>, agentId: string, jobId: string, leaseId: string): Promise<repo.JobRow> {
  const job = await repo.findJob(db, jobId);
  if (!job || job.agent_id !== agentId) throw new OutpostError('not_found', `job ${jobId} not found`);
  if (job.lease_id !== leaseId || !isActiveJobStatus(job.status)) {
    throw new OutpostError('lease_stale', `lease ${leaseId} is no longer current for job ${jobId}`);
  }
  return job;
}

/** The sandbox started: the run enters planning/applying. */
export async function startJob(ctx: ServerContext, agentId: string, jobId: string, leaseId: string): Promise<void> {
  await inTransaction(ctx, async (trx, effects) => {
    const job = await requireLease(trx, agentId, jobId, leaseId);
    if (job.status === 'running') return;
    await repo.updateLeasedJob(trx, job.id, leaseId, { status: 'running' });
    const run = await findRun(trx, job.run_id);
    if (run) {
      await transitionRun(trx, run, [queuedStatusOf(job.kind)], runningStatusOf(job.kind), ctx.now());
      effects.notify(`run:${run.id}`);
    }
  });
}

/** What a job token reaches: its own job, that job's run, and the run's workspace. */
export interface JobScope {
  readonly job: repo.JobRow;
  readonly run: RunRow;
  readonly workspace: WorkspaceRow;
}

/**
 * The job a job token belongs to. A job token lives exactly as long as its
 * job's lease: once the job is final (or re-queued to another agent) the
 * token is dead.
 */
export async function authenticateJobToken(ctx: ServerContext, token: string): Promise<JobScope> {
  const job = await repo.findJobByTokenHash(ctx.db, hashToken(token));
  if (!job) throw new OutpostError('token_invalid', 'the job token is not valid');
  if (finalJobStatuses.includes(job.status) || job.status === 'queued') {
    throw new OutpostError('token_revoked', 'the job this token belongs to is no longer running');
  }
  const run = await findRun(ctx.db, job.run_id);
  const workspace = run ? await findWorkspace(ctx.db, run.workspace_id) : undefined;
  if (!run || !workspace) throw new OutpostError('not_found', 'the job\'s run no longer exists');
  return { job, run, workspace };
}

/** What the job operation learns about its job: the run, the workspace, its variables (sensitive ones opened). */
export async function jobSpecOf(ctx: ServerContext, { job, run, workspace }: JobScope): Promise<JobSpec> {
  return {
    job_id: job.id,
    run_id: run.id,
    kind: job.kind,
    is_destroy: run.is_destroy === 1,
    plan_only: run.plan_only === 1,
    workspace: { id: workspace.id, name: workspace.name, working_directory: workspace.working_directory },
    engine: { name: workspace.engine, version: workspace.engine_version },
    ...jobOptionsOf(ctx, run.plan_options, await variablesForJob(ctx, workspace.id)),
  };
}

function requireKind(job: repo.JobRow, kind: 'plan' | 'apply', what: string): void {
  if (job.kind !== kind) throw new OutpostError('forbidden', `only ${kind} jobs may ${what}`);
}

async function requireBlob(ctx: ServerContext, key: string, what: string) {
  const blob = await ctx.blobs.stream(key);
  if (!blob) throw new OutpostError('not_found', `${what} not found`);
  return blob;
}

export async function configurationArchiveOf(ctx: ServerContext, { run }: JobScope) {
  return requireBlob(ctx, blobKeys.configuration(run.configuration_version_id), 'configuration version');
}

/** The plan file a plan job saved, as uploaded; its apply downloads it. */
export async function storePlan(ctx: ServerContext, { job, run }: JobScope, plan: Buffer): Promise<void> {
  requireKind(job, 'plan', 'upload a plan');
  await ctx.blobs.put(blobKeys.plan(run.id), plan);
}

export async function storePlanJson(ctx: ServerContext, { job, run }: JobScope, planJson: Buffer): Promise<void> {
  requireKind(job, 'plan', 'upload a plan');
  await ctx.blobs.put(blobKeys.planJson(run.id), planJson);
}

export async function savedPlanOf(ctx: ServerContext, { job, run }: JobScope) {
  requireKind(job, 'apply', 'download the saved plan');
  return requireBlob(ctx, blobKeys.plan(run.id), 'saved plan');
}

/** The operation's own report, sent with the job token before it exits. */
export async function recordResult(ctx: ServerContext, { job }: JobScope, result: JobResult): Promise<void> {
  await repo.updateLeasedJob(ctx.db, job.id, job.lease_id!, { result: JSON.stringify(result) });
}

export async function finishJob(ctx: ServerContext, agentId: string, jobId: string, request: JobFinishRequest): Promise<void> {
  await inTransaction(ctx, async (trx, effects) => {
    const job = await requireLease(trx, agentId, jobId, request.lease_id);
    // The agent's own stop (grace or force) ended the job: it is handled as a
    // lost agent would be, plan queued again and apply never re-run, and the
    // run says the agent was stopped rather than lost.
    if (request.status !== 'succeeded' && request.error?.code === 'agent_stopped') {
      await loseJob(ctx, trx, effects, job, { cause: request.error.message, stopped: true });
      effects.notify(`agent:${agentId}`);
      return;
    }
    const reported = job.result ? (JSON.parse(job.result) as JobResult) : undefined;
    // The operation's report names the cause; the agent's only knows the exit
    // and what happened to the sandbox. A memory kill, or the agent's memory
    // guard interrupting the job, is what only the agent sees (the operation
    // sees an engine or provisioner fail, or a cancel), and the cause when it happened.
    const agentSeen = request.error?.code === 'out_of_memory' || request.error?.code === 'memory_limit';
    const error = agentSeen ? request.error : (reported?.error ?? request.error);
    const status = request.status === 'succeeded' && reported?.outcome === 'failed' ? 'failed' : request.status;
    const fenced = await repo.updateLeasedJob(trx, job.id, request.lease_id, {
      status,
      finished_at: ctx.now(),
      error_code: error?.code ?? null,
      error_message: error?.message ?? null,
    });
    // The sweeper or a cancel ended this lease between our read and write.
    if (!fenced) throw new OutpostError('lease_stale', `lease ${request.lease_id} is no longer current for job ${jobId}`);
    await onJobEnded(ctx, trx, effects, { ...job, status }, status, error);
    effects.notify(`agent:${agentId}`);
  });
}

/**
 * The heartbeat: extends, in one statement, the leases of the jobs the agent
 * lists; answers the signals of those jobs and which of them are stale
 * (their lease is no longer current).
 */
export async function renewLeases(ctx: ServerContext, agentId: string, running: readonly RunningJob[]): Promise<{ signals: JobSignal[]; stale: string[] }> {
  const current = await repo.extendLeases(ctx.db, agentId, running, ctx.now() + ctx.config.leaseTimeout);
  // Signals are only for the jobs listed: an idle agent's heartbeat need not look.
  const signalled = running.length > 0 ? await repo.signalsForAgent(ctx.db, agentId, false) : [];
  const signals = toSignals(signalled).filter((signal) => running.some((job) => job.job_id === signal.job_id));
  return { signals, stale: running.filter((job) => !current.has(job.job_id)).map((job) => job.job_id) };
}

/** Signals for the agent's jobs that no poll has carried yet; they count as delivered from now on. */
export async function takeUndeliveredSignals(ctx: ServerContext, agentId: string): Promise<JobSignal[]> {
  const signalled = await repo.signalsForAgent(ctx.db, agentId, true);
  await repo.markSignalsDelivered(ctx.db, signalled.map((row) => row.id));
  return toSignals(signalled);
}

function toSignals(rows: readonly repo.JobRow[]): JobSignal[] {
  return rows.flatMap((row) => (row.signal ? [{ job_id: row.id, action: row.signal }] : []));
}

/**
 * Jobs whose lease expired: a plan changes nothing, so it is queued again
 * (bounded); an apply is never re-run automatically: the run errors and the
 * state saved so far stays.
 */
export async function sweepExpiredLeases(ctx: ServerContext): Promise<number> {
  const now = ctx.now();
  const expired = await repo.expiredLeases(ctx.db, now);
  for (const job of expired) {
    // One job that cannot be ended must not stop the sweep of all others.
    try {
      await inTransaction(ctx, (trx, effects) => loseJob(ctx, trx, effects, job, { cause: 'its agent stopped reporting', expiredBefore: now }));
    } catch (error) {
      ctx.logger.error({ err: error, job: job.id, run: job.run_id }, 'could not end a job whose lease expired; will retry');
    }
  }
  return expired.length;
}

/**
 * An agent that restarted reports a job its previous process was running
 * (it knows the lease from the persisted task handle), so the run moves on
 * now instead of when the lease lapses. Any agent of the job's pool may.
 */
export async function reportJobLost(ctx: ServerContext, agent: AgentRow, jobId: string, leaseId: string): Promise<void> {
  await inTransaction(ctx, async (trx, effects) => {
    const job = await repo.findJob(trx, jobId);
    if (!job || job.pool_id !== agent.pool_id) throw new OutpostError('not_found', `job ${jobId} not found`);
    if (job.lease_id !== leaseId) throw new OutpostError('lease_stale', `lease ${leaseId} is no longer current for job ${jobId}`);
    await loseJob(ctx, trx, effects, job, { cause: 'the agent running it restarted' });
  });
}

/** Why a job's agent let go of it. */
interface JobLoss {
  readonly cause: string;
  /** Its agent's own stop ended it (agent_stopped), rather than losing it (agent_lost). */
  readonly stopped?: boolean;
  /** Its agent never received it: it goes back only while it is still unstarted. */
  readonly unreceived?: boolean;
  /** For the sweeper: only while the lease is still expired at this time. */
  readonly expiredBefore?: number;
}

async function loseJob(ctx: ServerContext, trx: Kysely<Database>, effects: Effects, job: repo.JobRow, loss: JobLoss): Promise<void> {
  const { cause, stopped = false, unreceived = false, expiredBefore } = loss;
  const statuses: readonly JobStatus[] = unreceived ? ['leased'] : activeJobStatuses;
  const current = await repo.findJob(trx, job.id);
  if (!current || current.lease_id !== job.lease_id || !statuses.includes(current.status)) return;
  const leaseId = current.lease_id!;
  const fence = { expiredBefore, statuses };
  const now = ctx.now();
  // A lock the lost engine held would block the retry (same job) or the next run.
  await deleteLocksOfJob(trx, job.id);
  // Someone asked to cancel this job: it ends canceled, it is never re-run.
  if (current.signal !== null) {
    const status = 'canceled';
    if (!(await repo.updateLeasedJob(trx, job.id, leaseId, { status, finished_at: now }, fence))) return;
    await onJobEnded(ctx, trx, effects, { ...current, status }, 'canceled');
    ctx.logger.warn({ job: job.id, run: job.run_id, cause }, 'a canceled job lost its agent; the run is canceled');
    return;
  }
  // A job that never started (its claim response was lost, or the agent
  // died before starting it) ran nothing, so even an apply may go again,
  // and the attempt does not count against the plan's retry budget.
  const neverStarted = current.status === 'leased';
  if (neverStarted || (job.kind === 'plan' && job.attempt < ctx.config.planAttempts)) {
    const requeued = await repo.updateLeasedJob(
      trx,
      job.id,
      leaseId,
      {
        status: 'queued',
        attempt: neverStarted ? current.attempt : current.attempt + 1,
        // A claim its agent never received waits on for that agent; any other loss needs another agent.
        queued_count: unreceived ? current.queued_count : current.queued_count + 1,
        agent_id: null,
        lease_id: null,
        lease_expires_at: null,
        job_token_hash: null,
        result: null,
      },
      fence,
    );
    if (!requeued) return;
    effects.notify(`pool:${job.pool_id}`);
    // A serverless pool starts an agent for it again.
    effects.notify('webhooks');
    if (unreceived) {
      // The run never left *_queued: only the job's claim is undone.
      ctx.logger.info({ job: job.id, run: job.run_id, agent: current.agent_id }, `claim returned to the queue: ${cause}`);
      return;
    }
    const run = await findRun(trx, job.run_id);
    const queued = queuedStatusOf(job.kind);
    if (run) await transitionRun(trx, run, [runningStatusOf(job.kind), queued], queued, now);
    effects.notify(`run:${job.run_id}`);
    ctx.logger.warn({ job: job.id, run: job.run_id, kind: job.kind, attempt: job.attempt + 1, cause }, stopped ? 'job ended by its agent stopping; queued again' : 'job lost its agent; queued again');
    return;
  }
  const code = stopped ? 'agent_stopped' : 'agent_lost';
  // A job the agent stopped was reported, so it failed; a lost one was not.
  const status = stopped ? 'failed' : 'lost';
  const message =
    job.kind === 'apply'
      ? stopped
        ? `${cause} during apply; the apply is not retried automatically. The state the engine saved is kept: review it and queue a new run.`
        : `the agent was lost during apply (${cause}); the apply is not retried automatically. The state saved so far is kept: review it and queue a new run.`
      : `the agent was ${stopped ? 'stopped' : 'lost'} during plan ${job.attempt} times (last: ${cause}); giving up`;
  if (!(await repo.updateLeasedJob(trx, job.id, leaseId, { status, finished_at: now, error_code: code, error_message: message }, fence))) return;
  await onJobEnded(ctx, trx, effects, { ...job, status }, status, { code, message });
  ctx.logger.warn({ job: job.id, run: job.run_id, kind: job.kind, cause }, stopped ? 'job ended by its agent stopping' : 'job lost its agent');
}

/**
 * A queued job no agent took in time (a serverless pool whose receiver
 * started none): it fails and its run errors with `job_unclaimed` and the
 * reason. False when it was claimed or ended meanwhile.
 */
export async function failUnclaimedJob(ctx: ServerContext, jobId: string, message: string): Promise<boolean> {
  return inTransaction(ctx, async (trx, effects) => {
    const job = await repo.findJob(trx, jobId);
    if (!job || job.status !== 'queued') return false;
    const error = { code: 'job_unclaimed', message };
    if (!(await repo.updateJob(trx, job.id, { status: 'failed', finished_at: ctx.now(), error_code: error.code, error_message: message }, ['queued']))) return false;
    await onJobEnded(ctx, trx, effects, { ...job, status: 'failed' }, 'failed', error);
    return true;
  });
}

/** How many jobs are in each status, for /metrics. */
export async function countJobsByStatus(ctx: ServerContext): Promise<{ status: JobStatus; count: number }[]> {
  return repo.countJobsByStatus(ctx.db);
}

/** Queued jobs of every pool, for /metrics. */
export async function countQueuedJobsByPool(ctx: ServerContext): Promise<{ poolId: string; count: number }[]> {
  return repo.countQueuedJobsByPool(ctx.db);
}
