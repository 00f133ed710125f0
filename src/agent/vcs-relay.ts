// What an agent of a pool of kind `vcs` does instead of running jobs: it
// long-polls for the provider tasks of its pool (list a repository's refs,
// fetch a commit, post a commit status), does them against git servers only
// its network reaches, and sends the results back; and, when its webhook
// listener is on, forwards the webhooks those forges send it. Everything
// goes over the agent's own outbound connection: nothing listens for the
// control plane.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoff } from '../protocol/backoff.ts';
import type { VcsTaskAssignment } from '../protocol/vcs-api.ts';
import { executeTask } from '../vcs/task-executor.ts';
import { AuthError, isTransient, ProtocolError, type ControlPlaneClient } from './control-plane-client.ts';
import { AgentStoppedError, agentExitCodes } from './exit-codes.ts';

export interface VcsRelayDeps {
  client: ControlPlaneClient;
  logger: Logger;
  config: { vcsConcurrency: number; vcsWebhookPort: number; vcsWebhookHost: string };
}

/** Largest webhook body forwarded; the control plane has its own limit (OUTPOST_VCS_WEBHOOK_MAX_KB). */
const maxWebhookBytes = 25 * 1024 * 1024;
/** Headers of a forge's request that are not passed on: the connection's own, and credentials meant for this hop. */
const droppedHeaders = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'authorization', 'cookie', 'proxy-authorization', 'keep-alive', 'expect']);

function revoked(error: AuthError): AgentStoppedError {
  return new AgentStoppedError(`the control plane revoked this agent (${error.code}): ${error.message}`, agentExitCodes.tokenRefused);
}

/** Run by the agent (agent.ts) in place of claiming jobs once its registration says its pool is of kind `vcs`. */
export class VcsRelay {
  readonly #deps: VcsRelayDeps;
  readonly #session: string;
  readonly #running = new Set<Promise<void>>();
  #refused: AuthError | undefined;

  constructor(deps: VcsRelayDeps, session: string) {
    this.#deps = deps;
    this.#session = session;
  }

  /** Relays until `stopping` aborts; returns why the agent must stop when the control plane revoked it. */
  async run(stopping: AbortSignal): Promise<AgentStoppedError | undefined> {
    const listener = await this.#listen();
    const { logger, config } = this.#deps;
    logger.info({ concurrency: config.vcsConcurrency, webhookListener: config.vcsWebhookPort > 0 ? `${config.vcsWebhookHost}:${config.vcsWebhookPort}` : 'off' }, 'relaying version control work for this pool');
    let failures = 0;
    try {
      while (!stopping.aborted && !this.#refused) {
        const free = config.vcsConcurrency - this.#running.size;
        if (free <= 0) {
          await Promise.race(this.#running);
          continue;
        }
        try {
          const { tasks } = await this.#deps.client.vcsPoll(this.#session, { max_tasks: free }, stopping);
          failures = 0;
          for (const task of tasks) this.#start(task, stopping);
        } catch (error) {
          if (stopping.aborted) break;
          if (error instanceof AuthError) return revoked(error);
          failures++;
          const delay = backoff(failures, { baseMs: 500, maxMs: 15_000 });
          logger[isTransient(error) ? 'debug' : 'warn']({ err: (error as Error).message, retryInMs: Math.round(delay) }, 'VCS poll failed');
          await sleep(delay, undefined, { signal: stopping }).catch(() => undefined);
        }
      }
      return this.#refused ? revoked(this.#refused) : undefined;
    } finally {
      listener?.close();
      listener?.closeAllConnections();
      await Promise.allSettled(this.#running);
    }
  }

  #start(task: VcsTaskAssignment, stopping: AbortSignal): void {
    const done = this.#do(task, stopping).finally(() => this.#running.delete(done));
    this.#running.add(done);
  }

  async #do(task: VcsTaskAssignment, stopping: AbortSignal): Promise<void> {
    const { client, logger } = this.#deps;
    const started = performance.now();
    let { result, archive } = await executeTask(task, stopping);
    // Stopped mid-task: say so, and the control plane gives the task to another agent at once.
    if (stopping.aborted) result = { outcome: 'failed', error: { code: 'agent_stopped', message: 'the VCS agent was stopped during the task' } };
    try {
      if (archive && result.outcome === 'fetched') await client.vcsUploadArchive(this.#session, task.task_id, archive);
    } catch (error) {
      result = { outcome: 'failed', error: { code: 'vcs_fetch_failed', message: `the archive could not be uploaded: ${(error as Error).message}` } };
      archive = undefined;
    }
    try {
      await client.vcsReportResult(this.#session, task.task_id, result, AbortSignal.timeout(30_000));
      const fields = { task: task.task_id, kind: task.kind, outcome: result.outcome, ms: Math.round(performance.now() - started), ...(archive ? { bytes: archive.length } : {}) };
      if (result.outcome === 'failed') logger.warn({ ...fields, error: result.error }, 'VCS task failed');
      else logger.info(fields, 'VCS task done');
    } catch (error) {
      if (error instanceof AuthError) this.#refused = error;
      // Not reported: the task's lock expires and it is done again.
      logger.warn({ task: task.task_id, err: (error as Error).message }, 'the result of a VCS task could not be reported');
    }
  }

  /** The listener for forges inside this network; undefined when off. */
  async #listen(): Promise<http.Server | undefined> {
    const { vcsWebhookPort: port, vcsWebhookHost: host } = this.#deps.config;
    if (port === 0) return undefined;
    const server = http.createServer((request, response) => void this.#forward(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host }, resolve);
    });
    return server;
  }

  async #forward(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const answer = (status: number, body: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const match = /^\/webhooks\/(vcs-[A-Za-z0-9]{1,64})\/?$/.exec(request.url ?? '');
    if (request.method !== 'POST' || !match) return void answer(404, { error: 'POST webhooks to /webhooks/<VCS provider id>' });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > maxWebhookBytes) return void answer(413, { error: 'the webhook body is too large' });
      chunks.push(chunk as Buffer);
    }
    const headers = Object.fromEntries(
      Object.entries(request.headers)
        .filter(([name, value]) => typeof value === 'string' && !droppedHeaders.has(name))
        .map(([name, value]) => [name, value as string]),
    );
    try {
      answer(200, await this.#deps.client.vcsForwardWebhook(this.#session, match[1]!, headers, Buffer.concat(chunks)));
    } catch (error) {
      const status = error instanceof ProtocolError ? error.status : error instanceof AuthError ? 401 : 502;
      const code = error instanceof ProtocolError || error instanceof AuthError ? error.code : 'unavailable';
      this.#deps.logger.warn({ provider: match[1], status, code, err: (error as Error).message }, 'a forwarded webhook was refused');
      answer(status, { errors: [{ status: String(status), code, detail: (error as Error).message }] });
    }
  }
}
