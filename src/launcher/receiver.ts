// The launcher's HTTP side: verifies each delivery as the control plane
// signed it, then starts an agent for the job through the target, within
// the cap. Answers say what happened in the control plane's terms: 2xx
// accepted (retries stop), 401/403 never going to work, 503 try again.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { OutpostError } from '../protocol/errors.ts';
import { verifyWebhook, webhookHeaders, type WebhookPayload } from '../protocol/webhook-signature.ts';
import { frameworkErrors, installErrorHandling } from '../server/http/errors.ts';
import { readSigningSecrets, type LauncherConfig } from './config.ts';
import { LaunchError, type LaunchTarget } from './target.ts';

/** Deliveries are a few hundred bytes; anything much larger is not one. */
const bodyLimit = 64 * 1024;
/** A Docker or Kubernetes call that takes longer has hung: the delivery is answered, and retried. */
const callTimeoutMs = 30_000;
/** How long a delivery id is remembered (the control plane's retries end long before). */
const rememberMs = 60 * 60_000;

export function buildLauncherApp(config: LauncherConfig, target: LaunchTarget, logger: Logger, now: () => number = Date.now): FastifyInstance {
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit, frameworkErrors });
  installErrorHandling(app);
  // The signature is over the raw body: keep it as received.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const seen = new Map<string, { id: string; at: number }>();
  // One launch at a time: the cap is checked and used in one step.
  let turn: Promise<unknown> = Promise.resolve();

  app.get('/healthz', async () => ({ status: 'ok', target: target.kind }));

  const receive = async (headers: Record<string, string | string[] | undefined>, raw: unknown) => {
    const body = typeof raw === 'string' ? raw : '';
    const flat = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : value]));
    const verdict = verifyWebhook({ headers: flat, body, secrets: readSigningSecrets(config), nowSeconds: Math.floor(now() / 1000) });
    if (!verdict.ok) {
      logger.warn({ reason: verdict.reason, delivery: flat[webhookHeaders.delivery] }, `delivery refused: ${verdict.message}`);
      throw new OutpostError('signature_invalid', verdict.message);
    }
    const payload = parsePayload(body);
    if (config.allowedPools && !config.allowedPools.includes(payload.pool.id)) {
      throw new OutpostError('forbidden', `pool ${payload.pool.id} is not in OUTPOST_LAUNCHER_ALLOWED_POOLS`);
    }
    if (payload.event === 'ping') return { status: 200, body: { ok: true, target: target.kind } };
    if (payload.event !== 'job.queued' || !payload.job) return { status: 200, body: { ignored: payload.event } };
    for (const [id, entry] of seen) if (now() - entry.at > rememberMs) seen.delete(id);
    const known = seen.get(payload.delivery_id);
    if (known) return { status: 200, body: { agent: known.id, duplicate: true } };
    const job = payload.job;
    const launch = turn.then(async () => {
      const running = await withinTimeout(target.running(), `${target.kind} did not say within ${callTimeoutMs / 1000} s how many agents run`);
      if (running >= config.maxAgents) {
        throw new OutpostError('launcher_at_capacity', `${running} agents started by this launcher are running (OUTPOST_LAUNCHER_MAX_AGENTS=${config.maxAgents}); the control plane retries this delivery`);
      }
      return withinTimeout(
        target.launch({ deliveryId: payload.delivery_id, jobId: job.id, poolId: payload.pool.id, runId: payload.run?.id, workspace: payload.workspace?.name }),
        `${target.kind} did not start the agent within ${callTimeoutMs / 1000} s`,
      );
    });
    turn = launch.catch(() => undefined);
    try {
      const launched = await launch;
      seen.set(payload.delivery_id, { id: launched.id, at: now() });
      const log = { delivery: payload.delivery_id, job: job.id, run: payload.run?.id, workspace: payload.workspace?.name, agent: launched.id };
      logger.info(log, launched.duplicate ? 'an agent was already started for this delivery' : `agent started (${target.kind})`);
      return { status: launched.duplicate ? 200 : 202, body: { agent: launched.id, duplicate: launched.duplicate } };
    } catch (error) {
      if (error instanceof LaunchError) {
        logger.error({ delivery: payload.delivery_id, job: job.id }, error.message);
        throw new OutpostError('launch_failed', error.message);
      }
      throw error;
    }
  };

  for (const path of ['/', '/webhook']) {
    app.post(path, async (request, reply) => {
      if (request.body === undefined) throw new OutpostError('unsupported_media_type', 'a delivery is application/json');
      const answer = await receive(request.headers, request.body);
      return reply.status(answer.status).send(answer.body);
    });
  }
  return app;
}

async function withinTimeout<T>(work: Promise<T>, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new LaunchError(message)), callTimeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function parsePayload(body: string): WebhookPayload {
  let payload: Partial<WebhookPayload>;
  try {
    payload = JSON.parse(body) as Partial<WebhookPayload>;
  } catch {
    throw new OutpostError('invalid_request', 'the delivery body is not valid JSON');
  }
  if (typeof payload !== 'object' || payload === null || typeof payload.delivery_id !== 'string' || typeof payload.pool?.id !== 'string' || typeof payload.event !== 'string') {
    throw new OutpostError('invalid_request', 'the delivery body lacks event, delivery_id or pool.id');
  }
  if (payload.event === 'job.queued' && typeof payload.job?.id !== 'string') throw new OutpostError('invalid_request', 'a job.queued delivery lacks job.id');
  return payload as WebhookPayload;
}
