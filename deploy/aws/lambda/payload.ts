// The delivery's JSON body, checked before anything is started from it.
// The signature proves who sent it, not that this handler understands it:
// a control plane newer than the handler may send an event it does not know.
import type { WebhookPayload } from '../../../src/protocol/webhook-signature.ts';

export type PayloadResult = { ok: true; payload: WebhookPayload } | { ok: false; message: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

export function parsePayload(body: string): PayloadResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    return { ok: false, message: `the body is not JSON (${(error as Error).message})` };
  }
  if (!isObject(parsed)) return { ok: false, message: 'the body is not a JSON object' };
  const { event, delivery_id: deliveryId, pool, job, run, workspace } = parsed;
  if (event !== 'job.queued' && event !== 'ping') return { ok: false, message: `event ${JSON.stringify(event)} is not one this receiver handles (job.queued, ping)` };
  if (!nonEmptyString(deliveryId)) return { ok: false, message: 'delivery_id is missing' };
  if (!isObject(pool) || !nonEmptyString(pool.id) || typeof pool.name !== 'string') return { ok: false, message: 'pool.id or pool.name is missing' };
  if (event === 'job.queued') {
    if (!isObject(job) || !nonEmptyString(job.id)) return { ok: false, message: 'a job.queued delivery without job.id' };
    if (job.phase !== 'plan' && job.phase !== 'apply') return { ok: false, message: `job.phase ${JSON.stringify(job.phase)} is neither plan nor apply` };
    if (typeof job.attempt !== 'number' || !Number.isInteger(job.attempt)) return { ok: false, message: 'job.attempt is not an integer' };
  }
  if (run !== undefined && (!isObject(run) || !nonEmptyString(run.id))) return { ok: false, message: 'run has no id' };
  if (workspace !== undefined && (!isObject(workspace) || !nonEmptyString(workspace.id))) return { ok: false, message: 'workspace has no id' };
  return { ok: true, payload: parsed as unknown as WebhookPayload };
}
