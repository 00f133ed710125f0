// The server's version control loop. On every turn (when new provider work
// is queued, and every OUTPOST_VCS_INTERVAL) it:
//   1. queues a look at the refs of every linked repository whose provider
//      polls and whose interval passed (and of links whose default branch is
//      not known yet);
//   2. queues a commit status post for every run whose status changed;
//   3. does the due tasks of providers the server reaches itself (those
//      reached through a VCS pool wait for that pool's agents), a few at a
//      time, beside the turns;
//   4. removes old delivery records and ended tasks.
// Every write is conditional, so replicas sharing a database run it side by side.
import { executeTask } from '../../vcs/task-executor.ts';
import type { ServerContext } from '../context.ts';
import { reportCommitStatuses } from './commit-statuses.ts';
import { handleTaskResult } from './ingress.ts';
import * as repo from './repo.ts';
import { assignmentOf, commitArchiveKey, payloadOf, queueTask, takeDueTasks } from './tasks.ts';

const parallelTasks = 4;
const retentionMs = 7 * 24 * 3_600_000;
const pruneEveryMs = 3_600_000;

export function startVcsWorker(ctx: ServerContext): () => Promise<void> {
  const stop = new AbortController();
  const inFlight = new Set<Promise<void>>();
  let lastPrune = 0;
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        await schedulePolls(ctx);
        await reportCommitStatuses(ctx);
        const room = parallelTasks - inFlight.size;
        for (const task of room > 0 ? await takeDueTasks(ctx, null, null, room) : []) {
          const done = runTask(ctx, task, stop.signal).finally(() => inFlight.delete(done));
          inFlight.add(done);
        }
        if (ctx.now() - lastPrune > pruneEveryMs) {
          lastPrune = ctx.now();
          await repo.pruneDeliveries(ctx.db, ctx.now() - retentionMs);
          await repo.pruneTasks(ctx.db, ctx.now() - retentionMs);
        }
      } catch (error) {
        ctx.logger.error({ err: error }, 'version control turn failed; trying again on the next turn');
      }
      await ctx.notifier.wait(['vcs'], ctx.config.vcsInterval, stop.signal);
    }
  })();
  return async () => {
    stop.abort();
    await loop;
    await Promise.allSettled(inFlight);
  };
}

async function schedulePolls(ctx: ServerContext): Promise<void> {
  const now = ctx.now();
  const due = await repo.linksDueForPolling(ctx.db, now);
  const unresolved = await repo.linksWithoutBranch(ctx.db);
  for (const link of [...due, ...unresolved]) {
    const provider = await repo.findProvider(ctx.db, link.provider_id);
    if (provider) await queueTask(ctx, provider, { kind: 'refs', repository: link.repository });
  }
}

/** Does one task here and hands its result on as a VCS agent's would be. */
async function runTask(ctx: ServerContext, task: repo.TaskRow, stop: AbortSignal): Promise<void> {
  try {
    const assignment = await assignmentOf(ctx, task);
    if (!assignment) return;
    const outcome = await executeTask(assignment, stop);
    if (stop.aborted) return;
    const payload = payloadOf(task);
    if (outcome.archive && payload.kind === 'fetch') {
      await ctx.blobs.put(commitArchiveKey(task.provider_id, payload.repository, payload.sha, payload.submodules), outcome.archive);
    }
    await handleTaskResult(ctx, task, outcome.result);
  } catch (error) {
    ctx.logger.error({ err: error, task: task.id }, 'a version control task failed in the server');
  }
}
