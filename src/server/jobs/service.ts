// The agent side of the job lifecycle: claim, start, result, finish, and the
// sweeper for leases nobody renews. Job: queued → leased → running →
// succeeded | failed | canceled | lost (docs/architecture.md, "The life of a
// run"; docs/reliability.md for lost agents).
import type { Kysely, Selectable } from 'kysely';
import { OutpostError } from '../../protocol/errors.ts';
import type { JobAssignment, JobFinishRequest, JobResult } from '../../protocol/agent-api.ts';
import type { ServerContext } from '../context.ts';
import type { AgentsTable, Database } from '../db/schema.ts';
import { hashToken, newId, newToken } from '../ids.ts';
import { poolWakeLimit } from '../notifier.ts';
import { findRun, transitionRun } from '../runs/repo.ts';
import { runningStatusOf } from '../runs/lifecycle.ts';
import { onJobEnded } from '../runs/service.ts';
import { inTransaction, type Effects } from '../transaction.ts';
import * as repo from './repo.ts';

/** Claims up to `slots` queued jobs of the agent's pool. */
export async function claimJobs(ctx: ServerContext, agent: Selectable<AgentsTable>, slots: number): Promise<JobAssignment[]> {
  const assignments: JobAssignment[] = [];
  for (let i = 0; i < slots; i++) {
    const token = newToken('job');
    const now = ctx.now();
    const job = await repo.claimNextJob(ctx.db, ctx.dialect, agent.pool_id, {
      agentId: agent.id,
      leaseId: newId('lease'),
      expiresAt: now + ctx.config.leaseTimeout,
      tokenHash: hashToken(token),
      now,
    });
    if (!job) break;
    const context = await repo.assignmentContext(ctx.db, job.run_id, job.kind);
    if (!context) continue;
    assignments.push({
      job_id: job.id,
      lease_id: job.lease_id!,
      run_id: job.run_id,
      kind: job.kind,
      job_token: token,
      engine: { name: context.engine, version: context.engine_version },
      log_offset: context.log_size,
    });
  }
  return assignments;
}

async function requireLease(db: Kysely<Database>, agentId: string, jobId: string, leaseId: string): Promise<repo.JobRow> {
  const job = await repo.findJob(db, jobId);
  if (!job || job.agent_id !== agentId) throw new OutpostError('not_found', `job ${jobId} not found`);
  if (job.lease_id !== leaseId || !['leased', 'running'].includes(job.status)) {
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
      const queued = job.kind === 'plan' ? 'plan_queued' : 'apply_queued';
      await transitionRun(trx, run, [queued], runningStatusOf(job.kind), ctx.now());
      effects.notify(`run:${run.id}`);
    }
  });
}

/** The operation's own report, sent with the job token before it exits. */
export async function recordResult(ctx: ServerContext, job: repo.JobRow, result: JobResult): Promise<void> {
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
      await inTransaction(ctx, (trx, effects) => loseJob(ctx, trx, effects, job, { cause: 'its agent stopped reporting' }, now));
    } catch (error) {
      ctx.logger.error({ err: error, job: job.id, run: job.run_id }, 'could not end a job whose lease expired; will retry');
    }
  }
  return expired.length;
}

/** Puts back jobs claimed for a poll whose caller hung up before the answer: they ran nothing. */
export async function returnClaims(ctx: ServerContext, assignments: readonly { job_id: string; lease_id: string; run_id: string }[], poolId: string): Promise<void> {
  for (const assignment of assignments) {
    if (await repo.returnToQueue(ctx.db, assignment.job_id, assignment.lease_id)) {
      ctx.logger.info({ job: assignment.job_id, run: assignment.run_id }, 'claim returned to the queue: the polling agent went away');
    }
  }
  ctx.notifier.notify(`pool:${poolId}`, poolWakeLimit);
}

/**
 * An agent that restarted reports a job its previous process was running
 * (it knows the lease from the persisted task handle), so the run moves on
 * now instead of when the lease lapses. Any agent of the job's pool may.
 */
export async function reportJobLost(ctx: ServerContext, agent: Selectable<AgentsTable>, jobId: string, leaseId: string): Promise<void> {
  await inTransaction(ctx, async (trx, effects) => {
    const job = await repo.findJob(trx, jobId);
    if (!job || job.pool_id !== agent.pool_id) throw new OutpostError('not_found', `job ${jobId} not found`);
    if (job.lease_id !== leaseId) throw new OutpostError('lease_stale', `lease ${leaseId} is no longer current for job ${jobId}`);
    await loseJob(ctx, trx, effects, job, { cause: 'the agent running it restarted' });
  });
}

/** Why a job's agent let go of it: lost (lease lapsed, agent restarted: agent_lost), or `stopped` by its own stop (agent_stopped). */
interface JobLoss {
  readonly cause: string;
  readonly stopped?: boolean;
}

async function loseJob(ctx: ServerContext, trx: Kysely<Database>, effects: Effects, job: repo.JobRow, loss: JobLoss, expiredBefore?: number): Promise<void> {
  const { cause, stopped = false } = loss;
  const current = await repo.findJob(trx, job.id);
  if (!current || current.lease_id !== job.lease_id || !['leased', 'running'].includes(current.status)) return;
  const leaseId = current.lease_id!;
  const now = ctx.now();
  // A lock the lost engine held would block the retry (same job) or the next run.
  await trx.deleteFrom('state_locks').where('job_id', '=', job.id).execute();
  // Someone asked to cancel this job: it ends canceled, it is never re-run.
  if (current.signal !== null) {
    const status = 'canceled';
    if (!(await repo.updateLeasedJob(trx, job.id, leaseId, { status, finished_at: now }, expiredBefore))) return;
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
        agent_id: null,
        lease_id: null,
        lease_expires_at: null,
        job_token_hash: null,
        result: null,
      },
      expiredBefore,
    );
    if (!requeued) return;
    const run = await findRun(trx, job.run_id);
    const queued = job.kind === 'plan' ? 'plan_queued' : 'apply_queued';
    if (run) await transitionRun(trx, run, [runningStatusOf(job.kind), queued], queued, now);
    effects.notify(`pool:${job.pool_id}`);
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
  if (!(await repo.updateLeasedJob(trx, job.id, leaseId, { status, finished_at: now, error_code: code, error_message: message }, expiredBefore))) return;
  await onJobEnded(ctx, trx, effects, { ...job, status }, status, { code, message });
  ctx.logger.warn({ job: job.id, run: job.run_id, kind: job.kind, cause }, stopped ? 'job ended by its agent stopping' : 'job lost its agent');
}
