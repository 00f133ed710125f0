// Following a run live: stream the plan log as the engine writes it, then
// (when the run applies) the apply log, until the run settles.
//
// The logs endpoint with follow=1 keeps the response open and sends bytes the
// moment the agent uploads them, so output reaches the user without a
// polling delay. If the connection drops or stays quiet for a minute, the
// follower reconnects from the byte offset it has reached: nothing is shown
// twice and nothing is skipped. Run status is polled (every 500 ms) only to
// bridge the gaps between phases, when no log is being written.
import { setTimeout as sleep } from 'node:timers/promises';
import { backoff } from '../protocol/backoff.ts';
import { isFinalRunStatus, type RunStatus } from '../protocol/statuses.ts';
import type { OutpostApi } from './api-client.ts';
import { ServerUnreachableError } from './api-error.ts';
import { isPhaseOver, relatedId, type PhaseKind, type Run } from './api-resources.ts';

export interface FollowOptions {
  /** Receives log output as it arrives. */
  readonly write: (chunk: Uint8Array) => void;
  readonly pollIntervalMs?: number;
}

const defaultPollIntervalMs = 500;
const followIdleTimeoutMs = 60_000;
// About half a minute of backoff (0.5 s doubling to 5 s, eight times): long
// enough to ride out a server restart. One follower brings no herd, so no
// jitter: it would only make that half minute shorter by chance.
const maxReconnects = 8;
const reconnectBackoff = { baseMs: 500, maxMs: 5_000, jitter: false } as const;

const planInProgress: ReadonlySet<RunStatus> = new Set(['pending', 'plan_queued', 'planning']);
const applyInProgress: ReadonlySet<RunStatus> = new Set(['apply_queued', 'applying']);

/**
 * Follows a run through its plan and, when it applies without waiting for
 * confirmation, its apply. Returns the run once it is final or stopped at
 * `planned` (waiting for someone to confirm or discard it).
 */
export async function followRun(api: OutpostApi, runId: string, options: FollowOptions): Promise<Run> {
  const run = await followPlan(api, runId, options);
  if (applyInProgress.has(run.attributes.status) || (await applyHasRun(api, run))) return followApply(api, runId, options);
  return run;
}

/** Streams the plan log; returns the run once it has left the plan phase. */
export async function followPlan(api: OutpostApi, runId: string, options: FollowOptions): Promise<Run> {
  const interval = options.pollIntervalMs ?? defaultPollIntervalMs;
  const withPlan = await waitForRun(api, runId, (run) => relatedId(run, 'plan') !== undefined || isFinalRunStatus(run.attributes.status), interval);
  const planId = relatedId(withPlan, 'plan');
  if (planId !== undefined) await followPhaseLog(api, runId, 'plan', planId, options);
  return waitForRun(api, runId, (run) => !planInProgress.has(run.attributes.status), interval);
}

/** Waits for the apply to start, streams its log, and returns the final run. */
export async function followApply(api: OutpostApi, runId: string, options: FollowOptions): Promise<Run> {
  const interval = options.pollIntervalMs ?? defaultPollIntervalMs;
  // The apply log stays empty until an agent picks the apply up.
  const started = await waitForRun(api, runId, (run) => run.attributes.status === 'applying' || isFinalRunStatus(run.attributes.status), interval);
  const applyId = relatedId(started, 'apply');
  if (applyId !== undefined && (started.attributes.status === 'applying' || (await applyHasRun(api, started)))) {
    await followPhaseLog(api, runId, 'apply', applyId, options);
  }
  return waitForRun(api, runId, (run) => isFinalRunStatus(run.attributes.status), interval);
}

/** Writes the logs a run has so far (plan, then apply if it started), without waiting for more. */
export async function readRunLogs(api: OutpostApi, run: Run, write: (chunk: Uint8Array) => void): Promise<void> {
  const planId = relatedId(run, 'plan');
  if (planId !== undefined) await api.readLog('plan', planId, { offset: 0 }, (chunk) => write(withoutLogMarkers(chunk)));
  const applyId = relatedId(run, 'apply');
  if (applyId !== undefined && (await applyHasRun(api, run))) {
    await api.readLog('apply', applyId, { offset: 0 }, (chunk) => write(withoutLogMarkers(chunk)));
  }
}

export async function waitForRun(api: OutpostApi, runId: string, until: (run: Run) => boolean, intervalMs = defaultPollIntervalMs): Promise<Run> {
  for (;;) {
    const run = await api.getRun(runId);
    if (until(run)) return run;
    await sleep(intervalMs);
  }
}

async function applyHasRun(api: OutpostApi, run: Run): Promise<boolean> {
  const applyId = relatedId(run, 'apply');
  if (applyId === undefined || run.attributes.status === 'planned_and_finished' || run.attributes.status === 'discarded') return false;
  if (run.attributes.status === 'applying' || run.attributes.status === 'applied') return true;
  const status = (await api.getPhase('apply', applyId)).attributes.status;
  return status !== 'pending' && status !== 'queued' && status !== 'unreachable';
}

async function followPhaseLog(api: OutpostApi, runId: string, kind: PhaseKind, phaseId: string, options: FollowOptions): Promise<void> {
  const interval = options.pollIntervalMs ?? defaultPollIntervalMs;
  let offset = 0;
  let failures = 0;
  for (;;) {
    const offsetBefore = offset;
    try {
      await api.readLog(kind, phaseId, { offset, follow: true, idleTimeoutMs: followIdleTimeoutMs }, (chunk) => {
        offset += chunk.byteLength;
        options.write(withoutLogMarkers(chunk));
      });
      failures = 0;
    } catch (error) {
      if (!(error instanceof ServerUnreachableError)) throw error;
      // A quiet stream (the run waits for an agent, the engine is busy) is
      // not a failure: ask again from the same offset.
      if (isIdleTimeout(error)) continue;
      failures = offset > offsetBefore ? 1 : failures + 1;
      if (failures > maxReconnects) throw error;
      await sleep(backoff(failures - 1, reconnectBackoff));
      continue;
    }
    // The stream ended: normally because the phase is over. If it is not
    // (the server restarted, or the phase has not started yet), continue
    // from the offset reached.
    if (await phaseIsOver(api, runId, kind, phaseId)) return;
    await sleep(interval);
  }
}

function isIdleTimeout(error: ServerUnreachableError): boolean {
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT';
}

async function phaseIsOver(api: OutpostApi, runId: string, kind: PhaseKind, phaseId: string): Promise<boolean> {
  if (isPhaseOver((await api.getPhase(kind, phaseId)).attributes.status)) return true;
  // A run canceled before its phase started may leave the phase pending for good.
  return isFinalRunStatus((await api.getRun(runId)).attributes.status);
}

// TFE log streams wrap the output in STX (0x02) … ETX (0x03) markers; they
// mean nothing on a terminal, so they are dropped if a server sends them.
export function withoutLogMarkers(chunk: Uint8Array): Uint8Array {
  if (!chunk.includes(0x02) && !chunk.includes(0x03)) return chunk;
  return chunk.filter((byte) => byte !== 0x02 && byte !== 0x03);
}
