// Waiting for what real processes do, with diagnostics: every wait fails
// with the run's logs and the tails of the server and agent logs, so a
// failure shows what happened without re-running.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent, Run } from '../../src/protocol/api-resources.ts';
import { isFinalRunStatus, type RunStatus } from '../../src/protocol/statuses.ts';
import { getRun, listAgents, readLog, relatedId } from './api-calls.ts';
import type { ServerHandle, TestResource } from './cluster.ts';
import { logTail } from './spawned-process.ts';

/** The default wait for anything a run does: generous, since CI machines are slow. */
export const defaultTimeoutMs = 60_000;

/** Whether a run status is final (the run never changes again). */
export function isFinal(status: RunStatus): boolean {
  return isFinalRunStatus(status);
}

/** Logs of the processes involved, to attach to a failure message. */
export function processLogs(resources: readonly TestResource[]): string {
  return resources.map((resource) => `--- last lines of ${resource.logFile}\n${logTail(resource.logFile, 40)}\n---`).join('\n');
}

/** What a run looked like, with its logs and the process logs, for a failure message. */
export async function runDiagnostics(
  server: ServerHandle,
  runId: string,
  others: readonly TestResource[] = [],
): Promise<string> {
  const parts: string[] = [];
  try {
    const run = await getRun(server, runId);
    parts.push(`run ${runId}: ${JSON.stringify(run.attributes)}`);
    parts.push(`--- plan log\n${await readLog(server, relatedId(run, 'plan'))}`);
    parts.push(`--- apply log\n${await readLog(server, relatedId(run, 'apply'))}`);
  } catch (error) {
    parts.push(`(could not read run ${runId}: ${(error as Error).message})`);
  }
  parts.push(processLogs([server, ...others]));
  return parts.join('\n');
}

/**
 * Polls until `check` returns a value other than undefined; on timeout fails
 * with `describe()`'s text.
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  describe: () => Promise<string> | string,
  timeoutMs = defaultTimeoutMs,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${await describe()}`);
    await sleep(100);
  }
}

/**
 * Polls GET /api/v2/runs/:id until the run is in one of `statuses`. Fails at
 * once when it reaches a final status that is not wanted, or at the timeout;
 * either way with the run's logs and the server's (and `others'`) log tails.
 */
export async function waitForRunStatus(
  server: ServerHandle,
  runId: string,
  statuses: readonly RunStatus[],
  timeoutMs = defaultTimeoutMs,
  others: readonly TestResource[] = [],
): Promise<Run> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await getRun(server, runId);
    const status = run.attributes.status;
    if (statuses.includes(status)) return run;
    if (isFinalRunStatus(status)) {
      assert.fail(`run ${runId} ended ${status}, expected ${statuses.join(' or ')}\n${await runDiagnostics(server, runId, others)}`);
    }
    if (Date.now() > deadline) {
      assert.fail(
        `run ${runId} is still ${status} after ${timeoutMs / 1000} s, expected ${statuses.join(' or ')}\n` +
          (await runDiagnostics(server, runId, others)),
      );
    }
    await sleep(100);
  }
}

export async function waitForAgents(server: ServerHandle, poolId: string, count: number, others: readonly TestResource[] = []): Promise<Agent[]> {
  return waitUntil(
    `${count} agent(s) registered in pool ${poolId}`,
    async () => {
      const agents = await listAgents(server, poolId);
      return agents.length >= count ? agents : undefined;
    },
    () => processLogs([server, ...others]),
    30_000,
  );
}
