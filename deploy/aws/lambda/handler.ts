// The AWS receiver of an Outpost pool webhook: API Gateway (HTTP API,
// payload 2.0) → this Lambda function → an ECS Fargate task of
// outpost/agent-runner in single mode, started for the one queued job.
//
// Answers, as the control plane reads them: 2xx the delivery was accepted
// (202 a task was started, 200 a ping or a delivery already handled); 4xx
// the delivery itself is wrong (signature, body, pool) and will never work;
// 5xx a problem on this side (500 a setting to fix, 503 a passing AWS
// problem), which the control plane retries with backoff.
//
// Bundled into one file by scripts/bundle-aws-lambda.ts; deploy/aws deploys it.
import { ECSClient } from '@aws-sdk/client-ecs';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { verifyWebhook, webhookHeaders, type WebhookPayload } from '../../../src/protocol/webhook-signature.ts';
import { readConfig, type ReceiverConfig } from './config.ts';
import { findTask, LaunchError, runTask, startedByFor } from './ecs-launch.ts';
import { logLine, type LogFields } from './log.ts';
import { parsePayload } from './payload.ts';
import { SigningSecretCache, SigningSecretError } from './signing-secrets.ts';

/** The parts of an API Gateway HTTP API (payload format 2.0) event the handler reads. */
export interface HttpApiEvent {
  version?: string;
  routeKey?: string;
  rawPath?: string;
  headers?: Record<string, string | undefined>;
  body?: string | null;
  isBase64Encoded?: boolean;
  requestContext?: { requestId?: string; http?: { method?: string; sourceIp?: string } };
}

export interface HttpApiResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

// A mismatching signature re-reads the secret once it is this old, so a
// rotated secret works at once instead of after the cache's minute.
const rereadAfterMs = 10_000;

// Per Lambda container: the SDK clients and the secret cache outlive one
// invocation. Region, credentials and AWS_ENDPOINT_URL come from the environment.
let ecsClient: ECSClient | undefined;
let secretsClient: SecretsManagerClient | undefined;
const signingSecrets = new SigningSecretCache(async (arn) => {
  secretsClient ??= new SecretsManagerClient({});
  return (await secretsClient.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
});

function reply(statusCode: number, body: unknown): HttpApiResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function failure(statusCode: number, code: string, message: string, extra: { fix?: string; reason?: string } = {}): HttpApiResult {
  return reply(statusCode, { error: { code, message, ...extra } });
}

function lowerCaseHeaders(headers: HttpApiEvent['headers']): Record<string, string | undefined> {
  const lowered: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers ?? {})) lowered[name.toLowerCase()] = value;
  return lowered;
}

function bodyOf(event: HttpApiEvent): string {
  const body = event.body ?? '';
  // API Gateway encodes bodies it does not take for text; the signature is over the bytes sent.
  return event.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
}

export async function handler(event: HttpApiEvent): Promise<HttpApiResult> {
  const request: LogFields = { request_id: event.requestContext?.requestId };
  try {
    return await handle(event, request);
  } catch (error) {
    logLine('error', 'unexpected_error', { ...request, error: `${(error as Error).name}: ${(error as Error).message}` });
    return failure(500, 'internal', 'the receiver failed unexpectedly; see its log');
  }
}

async function handle(event: HttpApiEvent, request: LogFields): Promise<HttpApiResult> {
  const method = event.requestContext?.http?.method;
  if (method !== undefined && method.toUpperCase() !== 'POST') return failure(405, 'method_not_allowed', `${method} is not accepted: deliveries are POSTed`);

  const configured = readConfig(process.env);
  if (!configured.ok) {
    logLine('error', 'receiver_misconfigured', { ...request, problems: configured.problems, fix: 'set the Lambda function\'s environment (the deploy/aws module sets all of it)' });
    return failure(500, 'receiver_misconfigured', 'the receiver is not configured; see its log');
  }
  const config = configured.config;
  const headers = lowerCaseHeaders(event.headers);
  const body = bodyOf(event);
  const nowSeconds = Math.floor(Date.now() / 1000);
  Object.assign(request, { delivery_id: headers[webhookHeaders.delivery], attempt: headers[webhookHeaders.attempt], webhook_event: headers[webhookHeaders.event] });

  // Headers and timestamp first: a request that cannot be a delivery costs no Secrets Manager call.
  const precheck = verifyWebhook({ headers, body, secrets: [], nowSeconds });
  if (!precheck.ok && precheck.reason !== 'bad_signature') return rejected(request, precheck.reason, precheck.message);

  let secrets: string[];
  try {
    secrets = await signingSecrets.get(config.signingSecretArn);
    let verdict = verifyWebhook({ headers, body, secrets, nowSeconds });
    if (!verdict.ok && (signingSecrets.age(config.signingSecretArn) ?? 0) >= rereadAfterMs) {
      secrets = await signingSecrets.get(config.signingSecretArn, { refresh: true });
      verdict = verifyWebhook({ headers, body, secrets, nowSeconds });
    }
    if (!verdict.ok) return rejected(request, verdict.reason, verdict.message);
  } catch (error) {
    if (!(error instanceof SigningSecretError)) throw error;
    logLine('error', error.code, { ...request, message: error.message, fix: error.fix, aws_error: error.awsError, secret_arn: config.signingSecretArn });
    // The sender is not authenticated yet: the answer names no ARN.
    return error.retry
      ? failure(503, 'signing_secret_unavailable', 'the receiver could not read its signing secret now; retry')
      : failure(500, 'signing_secret_unreadable', 'the receiver cannot read its signing secret; see its log');
  }

  const parsed = parsePayload(body);
  if (!parsed.ok) {
    logLine('warn', 'delivery_rejected', { ...request, reason: 'bad_payload', message: parsed.message });
    return failure(400, 'invalid_request', parsed.message, { reason: 'bad_payload' });
  }
  const payload = parsed.payload;
  Object.assign(request, { delivery_id: payload.delivery_id, webhook_event: payload.event, pool_id: payload.pool.id, job_id: payload.job?.id, run_id: payload.run?.id });

  if (config.allowedPools !== undefined && !config.allowedPools.has(payload.pool.id)) {
    logLine('warn', 'delivery_rejected', { ...request, reason: 'pool_not_allowed', message: `pool ${payload.pool.id} (${payload.pool.name}) is not in OUTPOST_ALLOWED_POOLS` });
    return failure(403, 'forbidden', `this receiver does not start agents for pool ${payload.pool.id}`, { reason: 'pool_not_allowed' });
  }
  if (payload.event === 'ping') {
    logLine('info', 'ping', request);
    return reply(200, { ok: true });
  }
  return launch(config, payload, request);
}

function rejected(request: LogFields, reason: string, message: string): HttpApiResult {
  logLine('warn', 'delivery_rejected', { ...request, reason, message });
  // The code `outpost launcher` answers too; the reason says which check failed.
  return failure(401, 'signature_invalid', message, { reason });
}

async function launch(config: ReceiverConfig, payload: WebhookPayload, request: LogFields): Promise<HttpApiResult> {
  ecsClient ??= new ECSClient({});
  const startedBy = startedByFor(payload.delivery_id);
  const where = { cluster: config.cluster, task_definition: config.taskDefinition };
  try {
    const existing = await findTask(ecsClient, config, startedBy);
    if (existing !== undefined) {
      logLine('info', 'duplicate_delivery', { ...request, ...where, task_arn: existing, started_by: startedBy });
      return reply(200, { task_arn: existing, duplicate: true });
    }
    const taskArn = await runTask(ecsClient, config, payload, startedBy);
    logLine('info', 'task_started', { ...request, ...where, task_arn: taskArn, started_by: startedBy, phase: payload.job?.phase, job_attempt: payload.job?.attempt });
    return reply(202, { task_arn: taskArn });
  } catch (error) {
    if (!(error instanceof LaunchError)) throw error;
    logLine(error.status === 503 ? 'warn' : 'error', error.code, { ...request, ...where, message: error.message, fix: error.fix, aws_error: error.awsError });
    return failure(error.status, error.code, error.message, { fix: error.fix });
  }
}
