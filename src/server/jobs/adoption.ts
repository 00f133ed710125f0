// Taking a job over from another agent of its pool (jobs/:id/adopt): the
// Kubernetes worker on the node of a controller's pod, or a restarted
// controller. Its own file: the lease rules are those of service.ts, the
// answer is the adopter's assignment.
import type { Kysely } from 'kysely';
import type { JobAdoption } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { isActiveJobStatus } from '../../protocol/statuses.ts';
import type { AgentRow } from '../agents/repo.ts';
import type { ServerContext } from '../context.ts';
import type { Database } from '../db/schema.ts';
import { adoptedLeaseId } from '../ids.ts';
import { storedLogSize } from '../logs/service.ts';
import { inTransaction } from '../transaction.ts';
import * as repo from './repo.ts';

/**
 * Moves a job's lease to another agent of the same pool that names the
 * current lease id (jobs/:id/adopt): a new lease id fences the previous
 * holder out, and a signal already delivered to it is delivered again to
 * the adopter.
 */
export async function adoptJob(ctx: ServerContext, agent: AgentRow, jobId: string, leaseId: string): Promise<JobAdoption> {
  return inTransaction(ctx, async (trx) => {
    const job = await repo.findJob(trx, jobId);
    if (!job || job.pool_id !== agent.pool_id) throw new OutpostError('not_found', `job ${jobId} not found`);
    const newLease = adoptedLeaseId(leaseId, agent.id);
    // The same adoption asked again (the client retries when an answer is lost): the same answer.
    const repeated = job.agent_id === agent.id && job.lease_id === newLease && isActiveJobStatus(job.status);
    if (repeated) return adoptionOf(trx, job, newLease);
    if (job.lease_id !== leaseId || !isActiveJobStatus(job.status)) {
      throw new OutpostError('lease_stale', `lease ${leaseId} is no longer current for job ${jobId}`);
    }
    const moved = await repo.updateLeasedJob(trx, job.id, leaseId, {
      agent_id: agent.id,
      lease_id: newLease,
      lease_expires_at: ctx.now() + ctx.config.leaseTimeout,
      signal_delivered: 0,
      // No claim time: the adopter received the job in this answer, not in a
      // poll's, so no poll of its may hand the job back as never received
      // (handBackUnreceived). If this answer is lost, the lease lapses.
      leased_at: null,
    });
    if (!moved) throw new OutpostError('lease_stale', `lease ${leaseId} is no longer current for job ${jobId}`);
    ctx.logger.info({ job: job.id, run: job.run_id, from: job.agent_id, to: agent.id }, 'job adopted by another agent of its pool');
    return adoptionOf(trx, job, newLease);
  });
}

async function adoptionOf(db: Kysely<Database>, job: repo.JobRow, leaseId: string): Promise<JobAdoption> {
  const engine = await repo.engineOfJob(db, job.id);
  return {
    job_id: job.id,
    lease_id: leaseId,
    run_id: job.run_id,
    kind: job.kind,
    engine: { name: engine.engine, version: engine.engine_version },
    log_offset: await storedLogSize(db, job.run_id, job.kind),
    started: job.status === 'running',
  };
}
