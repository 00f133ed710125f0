// Periodic housekeeping: silent agents become offline, and jobs whose lease
// nobody renewed are re-queued or failed (jobs/service.ts says which).
import type { ServerContext } from './context.ts';
import { markSilentAgentsOffline } from './agents/service.ts';
import { pingDatabase } from './db/database.ts';
import { sweepExpiredLeases } from './jobs/service.ts';

export function startSweeper(ctx: ServerContext): () => void {
  let running = false;
  // Leases and agent silence are judged only after this server (and its
  // database) has been reachable for a whole lease timeout: agents that rode
  // out an outage heartbeat within that time and keep their jobs, instead of
  // losing applies to a restart or a database failover.
  let reachableSince = ctx.now();
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      if (ctx.now() - reachableSince < ctx.config.leaseTimeout) {
        await pingDatabase(ctx.db);
        return;
      }
      const offline = await markSilentAgentsOffline(ctx);
      if (offline > 0) ctx.logger.warn({ count: offline }, 'agents went offline');
      await sweepExpiredLeases(ctx);
    } catch (error) {
      reachableSince = ctx.now();
      ctx.logger.error({ err: error }, 'sweep failed; leases are not judged until the database has been reachable for a lease timeout');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), ctx.config.sweepInterval);
  timer.unref();
  return () => clearInterval(timer);
}
