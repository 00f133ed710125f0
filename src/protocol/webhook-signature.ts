// Pool webhooks: the headers a delivery carries and the signature over it.
// The control plane signs; `outpost launcher` and the AWS Lambda handler
// verify with this same module (the handler bundles it), so the three can
// never disagree on the format. Only node:crypto: the Lambda bundle stays
// small.
//
// Format (docs/serverless.md): `Outpost-Signature: v1=<hex>[,v1=<hex>]`,
// each an HMAC-SHA256 of `<Outpost-Timestamp>.<raw body>` with one of the
// pool's signing secrets (two while a rotated secret overlaps the new one).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const webhookHeaders = {
  event: 'outpost-event',
  delivery: 'outpost-delivery',
  attempt: 'outpost-delivery-attempt',
  timestamp: 'outpost-timestamp',
  signature: 'outpost-signature',
  idempotencyKey: 'idempotency-key',
} as const;

/** How far a delivery's timestamp may be from the receiver's clock: replays older than this are refused. */
export const webhookToleranceSeconds = 300;

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The signature header for a body signed with every current secret. */
export function signatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  return secrets.map((secret) => signWebhook(secret, timestamp, body)).join(',');
}

export type WebhookVerdict =
  | { ok: true }
  | { ok: false; reason: 'missing_headers' | 'bad_timestamp' | 'stale_timestamp' | 'bad_signature'; message: string };

export interface VerifyInput {
  /** Header names in lower case, as Node and API Gateway v2 give them. */
  headers: Readonly<Record<string, string | undefined>>;
  body: string;
  /** The receiver's signing secrets: the current one, and the previous one during a rotation. */
  secrets: readonly string[];
  nowSeconds: number;
  toleranceSeconds?: number;
}

/** Checks a delivery's timestamp and signature; the message says what to fix, never a secret. */
export function verifyWebhook(input: VerifyInput): WebhookVerdict {
  const timestampHeader = input.headers[webhookHeaders.timestamp];
  const signatureValue = input.headers[webhookHeaders.signature];
  if (!timestampHeader || !signatureValue) {
    return { ok: false, reason: 'missing_headers', message: 'the request has no Outpost-Timestamp or Outpost-Signature header: it was not sent by an Outpost control plane' };
  }
  if (!/^\d{1,12}$/.test(timestampHeader)) return { ok: false, reason: 'bad_timestamp', message: 'Outpost-Timestamp is not a Unix time in seconds' };
  const timestamp = Number(timestampHeader);
  const tolerance = input.toleranceSeconds ?? webhookToleranceSeconds;
  if (Math.abs(input.nowSeconds - timestamp) > tolerance) {
    return {
      ok: false,
      reason: 'stale_timestamp',
      message: `Outpost-Timestamp is ${Math.round(input.nowSeconds - timestamp)} s from this receiver's clock (more than ${tolerance} s): a replayed request, or a clock out of sync`,
    };
  }
  const offered = signatureValue
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .map((part) => Buffer.from(part.slice(3), 'hex'));
  for (const secret of input.secrets) {
    const expected = Buffer.from(signWebhook(secret, timestamp, input.body).slice(3), 'hex');
    if (offered.some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected))) return { ok: true };
  }
  return { ok: false, reason: 'bad_signature', message: 'Outpost-Signature does not match the body with this receiver\'s signing secret: the secret differs from the pool\'s, or the body was changed' };
}

/** The JSON body of a delivery. Never carries a secret: the receiver brings its own agent token. */
export interface WebhookPayload {
  event: 'job.queued' | 'ping';
  delivery_id: string;
  created_at: string;
  organization: { name: string };
  pool: { id: string; name: string };
  /** Absent for `ping` (a test delivery). */
  job?: { id: string; phase: 'plan' | 'apply'; attempt: number };
  run?: { id: string; url: string };
  workspace?: { id: string; name: string };
}
