// One attempt of one delivery: the payload (never a secret), the signature,
// the POST with a short timeout, and what the receiver answered, ready to be
// recorded. Redirects are not followed: a receiver that moved is reported,
// not chased with a signed body.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { EnvHttpProxyAgent, request } from 'undici';
import { signatureHeader, webhookHeaders, type WebhookPayload } from '../../protocol/webhook-signature.ts';
import type { ServerContext } from '../context.ts';
import { jobOfDelivery, poolOfDelivery, type DeliveryRow, type WebhookRow } from './repo.ts';

/** HTTPS_PROXY / NO_PROXY apply to deliveries as to every outbound call. */
let proxyAgent: EnvHttpProxyAgent | undefined;

export interface AttemptOutcome {
  ok: boolean;
  /** Columns of the delivery describing this attempt. */
  record: { response_status: number | null; response_excerpt: string | null; latency_ms: number; error: string | null };
}

const excerptBytes = 512;

/** The custom headers, opened, for a delivery. */
export function openHeaders(ctx: ServerContext, row: WebhookRow): Record<string, string> {
  return Object.fromEntries((JSON.parse(row.headers) as { name: string; value: string }[]).map((header) => [header.name, ctx.sealer.open(header.value)]));
}

/** The secrets a delivery is signed with now: the current one, and the previous one while it overlaps. */
export function signingSecrets(ctx: ServerContext, row: WebhookRow): string[] {
  const secrets = [ctx.sealer.open(row.signing_secret)];
  if (row.previous_secret && (row.previous_secret_expires_at ?? 0) > ctx.now()) secrets.push(ctx.sealer.open(row.previous_secret));
  return secrets;
}


export async function sendDelivery(ctx: ServerContext, webhook: WebhookRow, delivery: DeliveryRow, stop?: AbortSignal): Promise<AttemptOutcome> {
  const body = JSON.stringify(await payloadOf(ctx, delivery));
  const timestamp = Math.floor(ctx.now() / 1000);
  const custom = openHeaders(ctx, webhook);
  const secrets = signingSecrets(ctx, webhook);
  const headers = {
    ...custom,
    'content-type': 'application/json',
    'user-agent': 'Outpost-Webhooks/1',
    [webhookHeaders.event]: delivery.event,
    [webhookHeaders.delivery]: delivery.id,
    [webhookHeaders.attempt]: String(delivery.attempts),
    [webhookHeaders.idempotencyKey]: delivery.id,
    [webhookHeaders.timestamp]: String(timestamp),
    [webhookHeaders.signature]: signatureHeader(secrets, timestamp, body),
  };
  const refusal = refusedAddress(webhook.url);
  if (refusal) return { ok: false, record: { response_status: null, response_excerpt: null, latency_ms: 0, error: refusal } };
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const response = await request(webhook.url, {
      method: 'POST',
      headers,
      body,
      dispatcher: (proxyAgent ??= new EnvHttpProxyAgent({ connect: { lookup: guardedLookup } })),
      signal: stop ? AbortSignal.any([stop, AbortSignal.timeout(ctx.config.webhookTimeout)]) : AbortSignal.timeout(ctx.config.webhookTimeout),
      headersTimeout: ctx.config.webhookTimeout,
      bodyTimeout: ctx.config.webhookTimeout,
    });
    // A receiver may echo what it was sent: no custom header value or secret is kept.
    const excerpt = scrub(await readExcerpt(response.body), [...Object.values(custom), ...secrets]);
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    return {
      ok,
      record: {
        response_status: response.statusCode,
        response_excerpt: excerpt,
        latency_ms: latency(),
        error: ok ? null : response.statusCode >= 300 && response.statusCode < 400 ? 'the receiver redirected; redirects are not followed: set the final URL' : null,
      },
    };
  } catch (error) {
    return { ok: false, record: { response_status: null, response_excerpt: null, latency_ms: latency(), error: describeFailure(error, ctx.config.webhookTimeout) } };
  }
}

function scrub(text: string | null, secrets: readonly string[]): string | null {
  if (text === null) return null;
  return secrets.filter((secret) => secret.length >= 4).reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

/**
 * Link-local addresses (169.254.0.0/16, fe80::/10) are where clouds serve
 * instance credentials: a webhook may never reach them, by name or by
 * address. Everything else (loopback, private networks) is allowed: a
 * self-hosted receiver usually lives there.
 */
function isLinkLocal(address: string): boolean {
  return /^169\.254\./.test(address) || /^fe[89ab][0-9a-f]:/i.test(address) || /^::ffff:169\.254\./i.test(address) || address === '0.0.0.0';
}

export function refusedAddress(url: string): string | undefined {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return isIP(host) && isLinkLocal(host) ? `${host} is a link-local address (cloud instance metadata): webhooks may not reach it` : undefined;
}

const guardedLookup: typeof dnsLookup = ((hostname: string, options: LookupOptions, callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    const refused = addresses.find((entry) => isLinkLocal(entry.address));
    if (refused) return callback(Object.assign(new Error(`${hostname} resolves to ${refused.address}, a link-local address (cloud instance metadata): webhooks may not reach it`), { code: 'ELINKLOCAL' }), '');
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}) as typeof dnsLookup;

/** The first bytes of the answer, as text: enough to show what a failing receiver said. */
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= excerptBytes) break;
  }
  body.destroy();
  const text = Buffer.concat(chunks).subarray(0, excerptBytes).toString('utf8').trim();
  return text === '' ? null : text;
}

function describeFailure(error: unknown, timeoutMs: number): string {
  const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code;
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return `no answer within ${timeoutMs / 1000} s (OUTPOST_WEBHOOK_TIMEOUT)`;
  }
  if (code === 'ELINKLOCAL') return err.message;
  if (code === 'ECONNREFUSED') return 'connection refused: nothing listens at the webhook URL';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the webhook URL\'s host name does not resolve';
  if (code?.startsWith('ERR_TLS') || code?.includes('CERT')) return `TLS failed: ${code}`;
  return `${code ?? err.name}: ${err.message}`;
}

/** Where the webhook points, without its query string (which may carry a key) or credentials. */
export function safeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

async function payloadOf(ctx: ServerContext, delivery: DeliveryRow): Promise<WebhookPayload> {
  const pool = await poolOfDelivery(ctx.db, delivery.pool_id);
  const base: WebhookPayload = {
    event: delivery.event,
    delivery_id: delivery.id,
    created_at: new Date(delivery.created_at).toISOString(),
    organization: { name: pool.organization },
    pool: { id: pool.id, name: pool.name },
  };
  const job = delivery.job_id ? await jobOfDelivery(ctx.db, delivery.job_id) : undefined;
  if (!job) return base;
  return {
    ...base,
    job: { id: job.id, phase: job.kind, attempt: job.attempt },
    run: { id: job.run_id, url: `${ctx.publicUrl.replace(/\/$/, '')}/api/v2/runs/${job.run_id}` },
    workspace: { id: job.workspace_id, name: job.workspace },
  };
}
