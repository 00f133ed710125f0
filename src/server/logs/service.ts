// Appending to a run log with byte offsets: a retry of a chunk already
// stored is acknowledged and not stored twice; a chunk that would leave a gap
// is refused with the size the server has, so the agent resends from there.
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import type { JobRow } from '../jobs/repo.ts';
import { inTransaction } from '../transaction.ts';
import { insertChunk, logSize } from './repo.ts';

export async function appendLog(ctx: ServerContext, job: JobRow, leaseId: string, offset: number, data: Buffer): Promise<number> {
  return inTransaction(ctx, async (trx, effects) => {
    const current = await trx.selectFrom('jobs').select(['lease_id', 'status']).where('id', '=', job.id).executeTakeFirst();
    if (!current || current.lease_id !== leaseId || !['leased', 'running'].includes(current.status)) {
      throw new OutpostError('lease_stale', `lease ${leaseId} is no longer current for job ${job.id}`);
    }
    const size = await logSize(trx, job.run_id, job.kind);
    if (offset > size) {
      throw new OutpostError('log_offset_gap', `chunk starts at byte ${offset} but the log has ${size} bytes`, { size });
    }
    const fresh = data.subarray(size - offset);
    if (fresh.length === 0) return size;
    // A runaway job must not fill the database; the shipper stops on this 4xx.
    const limit = ctx.config.maxLogMb * 1024 * 1024;
    if (size + fresh.length > limit) {
      throw new OutpostError('log_too_large', `the log would grow beyond ${ctx.config.maxLogMb} MiB (OUTPOST_MAX_LOG_MB)`, { size, limit });
    }
    await insertChunk(trx, job.run_id, job.kind, size, fresh);
    effects.notify(`log:${job.run_id}`);
    return size + fresh.length;
  });
}
