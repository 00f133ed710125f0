// Run logs: appending with byte offsets (a retry of a chunk already stored
// is acknowledged and not stored twice; a chunk that would leave a gap is
// refused with the size the server has, so the agent resends from there),
// and reading or following a phase's log.
import type { PassThrough } from 'node:stream';
import type { Kysely } from 'kysely';
import { once } from 'node:events';
import { OutpostError } from '../../protocol/errors.ts';
import { isActiveJobStatus, isFinalRunStatus, type JobKind, type RunStatus } from '../../protocol/statuses.ts';
import { blobKeys } from '../blobs/blob-store.ts';
import type { ServerContext } from '../context.ts';
import type { Database } from '../db/schema.ts';
import { runIdOfPhase } from '../ids.ts';
import { findJob, findPhaseJob, type JobRow } from '../jobs/repo.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { findRun, type RunRow } from '../runs/repo.ts';
import { requireRun } from '../runs/service.ts';
import { inTransaction } from '../transaction.ts';
import { insertChunk, logSize, readLog } from './repo.ts';

/** How many bytes of a phase's log are stored (where an agent that takes the job over goes on). */
export function storedLogSize(db: Kysely<Database>, runId: string, phase: JobKind): Promise<number> {
  return logSize(db, runId, phase);
}

/** Appends a chunk the agent holding the job's lease sent; returns the log's new size. */
export async function appendLog(ctx: ServerContext, agentId: string, jobId: string, leaseId: string, offset: number, data: Buffer): Promise<number> {
  return inTransaction(ctx, async (trx, effects) => {
    const job = await findJob(trx, jobId);
    if (!job || job.agent_id !== agentId) throw new OutpostError('not_found', `job ${jobId} not found`);
    if (job.lease_id !== leaseId || !isActiveJobStatus(job.status)) {
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

/** A run's plan (`plan-…`) or apply (`apply-…`) the caller may see, with the phase's job if it has one. */
export async function requirePhase(ctx: ServerContext, principal: ApiPrincipal, phaseId: string, kind: JobKind): Promise<{ run: RunRow; job: JobRow | undefined }> {
  const runId = runIdOfPhase(phaseId);
  if (!runId || !phaseId.startsWith(kind === 'plan' ? 'plan-' : 'apply-')) throw new OutpostError('not_found', `${kind} ${phaseId} not found`);
  const run = await requireRun(ctx, principal, runId);
  return { run, job: await findPhaseJob(ctx.db, run.id, kind) };
}

export async function readPhaseLog(ctx: ServerContext, run: RunRow, kind: JobKind, offset: number, limit: number): Promise<Buffer> {
  return readLog(ctx.db, run.id, kind, offset, limit);
}

/** A plan or apply by id, for a request whose pre-signed URL already proves what it may read. */
export async function findPhase(ctx: ServerContext, phaseId: string, kind: JobKind): Promise<RunRow> {
  const runId = runIdOfPhase(phaseId);
  const run = runId && phaseId.startsWith(kind === 'plan' ? 'plan-' : 'apply-') ? await findRun(ctx.db, runId) : undefined;
  if (!run) throw new OutpostError('not_found', `${kind} ${phaseId} not found`);
  return run;
}

const startOfText = Buffer.from([0x02]);
const endOfText = Buffer.from([0x03]);

/**
 * A phase's log as TFE's log URLs serve it, for go-tfe's LogReader: an STX
 * byte before the log and an ETX byte after it once the phase can write no
 * more; offsets count those bytes too. The reader stops at ETX, so it is
 * sent only when the phase is over and this read reaches the log's end.
 */
export async function readFramedPhaseLog(ctx: ServerContext, runId: string, kind: JobKind, offset: number, limit: number): Promise<Buffer> {
  const run = await findRun(ctx.db, runId);
  // Checked before reading: what was appended before the phase closed is then in this read.
  const over = !run || !phaseOpen(kind, run.status);
  const head = offset === 0 ? startOfText : Buffer.alloc(0);
  const from = Math.max(0, offset - 1);
  const body = await readLog(ctx.db, runId, kind, from, Math.max(0, limit - head.length));
  const parts = [head, body];
  if (over && head.length + body.length < limit && from + body.length >= (await logSize(ctx.db, runId, kind))) parts.push(endOfText);
  return Buffer.concat(parts);
}

/** Whether a phase can still write to its log: a pre-signed log URL stays good while it can (runs outlast any expiry). */
export async function phaseStillOpen(ctx: ServerContext, phaseId: string, kind: JobKind): Promise<boolean> {
  const runId = runIdOfPhase(phaseId);
  const run = runId ? await findRun(ctx.db, runId) : undefined;
  return run !== undefined && phaseOpen(kind, run.status);
}

/** The JSON rendering of a plan the caller may see, as the job operation uploaded it. */
export async function planJsonOutput(ctx: ServerContext, principal: ApiPrincipal, planId: string): Promise<Buffer> {
  const runId = runIdOfPhase(planId);
  if (!runId) throw new OutpostError('not_found', `plan ${planId} not found`);
  const run = await requireRun(ctx, principal, runId);
  const blob = await ctx.blobs.get(blobKeys.planJson(run.id));
  if (!blob) throw new OutpostError('not_found', 'this plan has no JSON output (yet)');
  return blob;
}

/** Whether a phase can still produce log output. */
function phaseOpen(kind: JobKind, status: RunStatus): boolean {
  if (isFinalRunStatus(status)) return false;
  return kind === 'plan' ? ['pending', 'plan_queued', 'planning'].includes(status) : true;
}

/** Writes a phase's log from `from` to `out` as it grows, woken by appends, until the phase is over or `gone` aborts. */
export async function followPhaseLog(ctx: ServerContext, runId: string, kind: JobKind, from: number, out: PassThrough, gone: AbortSignal): Promise<void> {
  let offset = from;
  try {
    while (!gone.aborted) {
      const run = await findRun(ctx.db, runId);
      const open = run ? phaseOpen(kind, run.status) : false;
      // Read after checking status: anything appended before the phase
      // closed is then guaranteed to be in this read.
      const data = await readLog(ctx.db, runId, kind, offset, 4 * 1024 * 1024);
      if (data.length > 0) {
        offset += data.length;
        // A client that stops reading and then disconnects never drains the
        // stream: waiting for 'drain' alone would park this handler forever.
        if (!out.write(data)) await once(out, 'drain', { signal: gone }).catch(() => undefined);
        continue;
      }
      if (!open) break;
      if ((await ctx.notifier.wait([`log:${runId}`, `run:${runId}`], 15_000, gone)) === 'aborted') break;
    }
  } catch (error) {
    ctx.logger.error({ err: error, run: runId }, 'log stream failed');
  } finally {
    // Nobody will read what is still buffered for a client that left.
    if (gone.aborted) out.destroy();
    else out.end();
    ctx.logger.debug({ run: runId, phase: kind, bytes: offset - from, client_gone: gone.aborted }, 'log follow ended');
  }
}
