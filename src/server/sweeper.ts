// Periodic housekeeping: silent agents become offline, and jobs whose lease
// nobody renewed are re-queued or failed (jobs/service.ts says which).
import type { ServerContext } from './context.ts';
import { markSilentAgentsOffline } from './agents/repo.ts';
import { sweepExpiredLeases } from './jobs/service.ts';

export function startSweeper(ctx: ServerContext): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const offline = await markSilentAgentsOffline(ctx.db, ctx.now() - ctx.config.leaseTimeout);
      if (offline > 0) ctx.logger.warn({ count: offline }, 'agents went offline');
      await sweepExpiredLeases(ctx);
    } catch (error) {
      ctx.logger.error({ err: error }, 'sweep failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), ctx.config.sweepInterval);
  timer.unref();
  return () => clearInterval(timer);
}
