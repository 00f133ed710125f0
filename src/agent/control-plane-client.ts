// The agent's side of the protocol (/api/agent/v1). Transient failures
// (connection errors, timeouts, 5xx, 429) are retried with jittered
// exponential backoff within a budget per call, so agents ride out a server
// restart or an unreachable server (docs/reliability.md, "Control plane
// restarts and outages"); 401 becomes AuthError so the agent can stop with a
// clear message instead of retrying forever. Late retries are safe: the
// server fences every job update with its lease id.
import type { Agent as HttpAgent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  agentPaths,
  heartbeatResponse,
  jobAdoption,
  logAppendResponse,
  pollResponse,
  registerResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JobAdoption,
  type JobFinishRequest,
  type PollRequest,
  type PollResponse,
  type RegisterRequest,
  type RegisterResponse,
} from '../protocol/agent-api.ts';
import { forwardedHeadersHeader, vcsPaths, vcsPollResponse, type VcsPollRequest, type VcsPollResponse, type VcsTaskResult } from '../protocol/vcs-api.ts';
import { backoff } from '../protocol/backoff.ts';
import { connectionPool, exchange, readBody } from '../protocol/http-exchange.ts';

export class AuthError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'AuthError';
    this.code = code;
  }
}

export class ProtocolError extends Error {
  readonly status: number;
  readonly code: string;
  readonly meta: Record<string, unknown>;
  constructor(status: number, code: string, message: string, meta: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ProtocolError';
    this.status = status;
    this.code = code;
    this.meta = meta;
  }
}

interface CallOptions {
  body?: unknown;
  raw?: Buffer;
  query?: Record<string, string | number>;
  token: string;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Stop retrying after this long; undefined retries until the signal aborts. */
  retryForMs?: number;
  /** Gives up one attempt after this long (a server that accepts connections but never answers). */
  attemptTimeoutMs?: number;
}

/**
 * How long job calls are retried while the server cannot be reached. The
 * job's lease does not lapse meanwhile: the server judges leases only after
 * it has been up for a lease timeout, and the agent's heartbeats resume as
 * soon as it answers.
 */
export const jobCallBudgetMs = 15 * 60_000;
/** Calls that carry a job update answer quickly; one that takes longer than this went astray. */
const updateAttemptTimeoutMs = 60_000;
/** Retries of one call: 0.25 s doubling to 15 s, so a restarted server is reached within seconds and a long outage costs a request per 15 s. */
const retryBackoff = { baseMs: 250, maxMs: 15_000 } as const;
/** A stopping agent waits this long for its deregistration, then exits anyway. */
const deregisterTimeoutMs = 1_000;
/** Silence on a connection for this long fails the attempt: longer than any long-poll the server holds (≤ 60 s). */
const idleTimeoutMs = 120_000;

/** A failure worth retrying: the server (or the way to it) is down, not the request wrong. */
export function isTransient(error: unknown): boolean {
  return !(error instanceof AuthError) && (!(error instanceof ProtocolError) || error.status >= 500 || error.status === 429);
}

export class ControlPlaneClient {
  readonly #url: string;
  readonly #logger: Logger;
  readonly #connections: HttpAgent;
  /** When the control plane stopped answering; undefined while it answers. One warning per outage, not per attempt. */
  #unreachableSince: number | undefined;

  constructor(url: string, logger: Logger) {
    this.#url = url;
    this.#logger = logger;
    // Idle connections close before the server's keep-alive (65 s, src/server/app.ts) can close them under a request.
    this.#connections = connectionPool(url, { freeSocketTimeoutMs: 60_000 });
  }

  /** Retried for 5 minutes while the server is unreachable, or until `signal` aborts (the agent is stopping). */
  async register(poolToken: string, body: RegisterRequest, signal?: AbortSignal): Promise<RegisterResponse> {
    return registerResponse.parse(await this.#call('POST', agentPaths.register, { token: poolToken, body, signal, retryForMs: 5 * 60_000 }));
  }

  /**
   * Best effort, one short attempt: a stopping agent must exit promptly even
   * when the server is down, and a server that missed it marks the agent
   * offline after a lease timeout anyway.
   */
  async deregister(session: string): Promise<void> {
    await this.#call('POST', agentPaths.deregister, { token: session, body: {}, retryForMs: 0, attemptTimeoutMs: deregisterTimeoutMs });
  }

  async poll(session: string, body: PollRequest, signal: AbortSignal): Promise<PollResponse> {
    return pollResponse.parse(await this.#call('POST', agentPaths.poll, { token: session, body, signal, retryForMs: 0 }));
  }

  /** One attempt (the heartbeat loop retries), bounded by `timeoutMs` so a hung request cannot outlast the lease. */
  async heartbeat(session: string, body: HeartbeatRequest, timeoutMs = 10_000, signal?: AbortSignal): Promise<HeartbeatResponse> {
    return heartbeatResponse.parse(await this.#call('POST', agentPaths.heartbeat, { token: session, body, signal, retryForMs: 0, attemptTimeoutMs: timeoutMs }));
  }

  async startJob(session: string, jobId: string, leaseId: string): Promise<void> {
    await this.#call('POST', agentPaths.jobStart(jobId), { token: session, body: { lease_id: leaseId }, retryForMs: jobCallBudgetMs, attemptTimeoutMs: updateAttemptTimeoutMs });
  }

  /** One attempt: the log shipper keeps the bytes and retries with its own backoff. */
  async appendLog(session: string, jobId: string, leaseId: string, offset: number, data: Buffer, signal?: AbortSignal): Promise<number> {
    const options = { token: session, raw: data, query: { lease_id: leaseId, offset }, signal, retryForMs: 0, attemptTimeoutMs: updateAttemptTimeoutMs };
    const result = await this.#call('PUT', agentPaths.jobLogs(jobId), options);
    return logAppendResponse.parse(result).size;
  }

  /**
   * How many bytes of the job's log the control plane holds: an empty chunk
   * at offset 0, which it acknowledges with the log's size (bytes it has are
   * never stored twice). A lease it no longer holds is refused (409
   * lease_stale, or 404 once the job is another agent's). An agent that took
   * back a sandbox after a restart continues the log from there.
   */
  async logSize(session: string, jobId: string, leaseId: string): Promise<number> {
    const options = { token: session, raw: Buffer.alloc(0), query: { lease_id: leaseId, offset: 0 }, retryForMs: jobCallBudgetMs, attemptTimeoutMs: updateAttemptTimeoutMs };
    return logAppendResponse.parse(await this.#call('PUT', agentPaths.jobLogs(jobId), options)).size;
  }

  /** Takes over a job another agent of the pool holds, naming its current lease; the answer carries the new lease. */
  async adoptJob(session: string, jobId: string, leaseId: string): Promise<JobAdoption> {
    return jobAdoption.parse(await this.#call('POST', agentPaths.jobAdopt(jobId), { token: session, body: { lease_id: leaseId }, retryForMs: 30_000, attemptTimeoutMs: updateAttemptTimeoutMs }));
  }

  async reportLost(session: string, jobId: string, leaseId: string): Promise<void> {
    await this.#call('POST', agentPaths.jobLost(jobId), { token: session, body: { lease_id: leaseId }, retryForMs: 30_000 });
  }

  async finishJob(session: string, jobId: string, body: JobFinishRequest, signal?: AbortSignal): Promise<void> {
    await this.#call('POST', agentPaths.jobFinish(jobId), { token: session, body, signal, retryForMs: jobCallBudgetMs, attemptTimeoutMs: updateAttemptTimeoutMs });
  }

  // The VCS relay (a VCS agent: src/agent/vcs-relay.ts).

  async vcsPoll(session: string, body: VcsPollRequest, signal: AbortSignal): Promise<VcsPollResponse> {
    return vcsPollResponse.parse(await this.#call('POST', vcsPaths.poll, { token: session, body, signal, retryForMs: 0 }));
  }

  async vcsUploadArchive(session: string, taskId: string, archive: Buffer, signal?: AbortSignal): Promise<void> {
    await this.#call('PUT', vcsPaths.taskArchive(taskId), { token: session, raw: archive, signal, retryForMs: 60_000 });
  }

  async vcsReportResult(session: string, taskId: string, result: VcsTaskResult, signal?: AbortSignal): Promise<void> {
    await this.#call('POST', vcsPaths.taskResult(taskId), { token: session, body: result, signal, retryForMs: 60_000, attemptTimeoutMs: updateAttemptTimeoutMs });
  }

  /** Forwards a forge's webhook byte for byte (its headers ride in one header); one attempt: the forge retries itself. */
  async vcsForwardWebhook(session: string, providerId: string, headers: Record<string, string>, body: Buffer): Promise<{ outcome: string }> {
    const forwarded = { [forwardedHeadersHeader]: Buffer.from(JSON.stringify(headers)).toString('base64') };
    return (await this.#call('POST', vcsPaths.webhook(providerId), { token: session, raw: body, headers: forwarded, retryForMs: 0, attemptTimeoutMs: updateAttemptTimeoutMs })) as { outcome: string };
  }

  async close(): Promise<void> {
    this.#connections.destroy();
  }

  async #call(method: 'GET' | 'POST' | 'PUT', path: string, options: CallOptions): Promise<unknown> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.#once(method, path, options);
        this.#reachable();
        return result;
      } catch (error) {
        if (options.signal?.aborted || !isTransient(error)) {
          if (!isTransient(error)) this.#reachable();
          throw error;
        }
        this.#unreachable(path, error as Error);
        const budget = options.retryForMs;
        if (budget !== undefined && Date.now() - started >= budget) throw error;
        const delay = backoff(attempt, retryBackoff);
        this.#logger.debug({ path, attempt: attempt + 1, retryInMs: Math.round(delay), err: (error as Error).message }, 'control plane request failed; retrying');
        await sleep(delay, undefined, { signal: options.signal }).catch(() => undefined);
      }
    }
  }

  /** The first failure of an outage is a warning; the attempts after it are debug lines. */
  #unreachable(path: string, error: Error): void {
    if (this.#unreachableSince !== undefined) return;
    this.#unreachableSince = Date.now();
    this.#logger.warn({ path, err: error.message }, 'the control plane cannot be reached; retrying with backoff (running jobs go on, their logs are buffered)');
  }

  #reachable(): void {
    if (this.#unreachableSince === undefined) return;
    this.#logger.warn({ downForMs: Date.now() - this.#unreachableSince }, 'the control plane answers again');
    this.#unreachableSince = undefined;
  }

  async #once(method: string, path: string, options: CallOptions): Promise<unknown> {
    const url = new URL(this.#url + path);
    for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { ...options.headers, authorization: `Bearer ${options.token}` };
    let body: string | Buffer | undefined;
    if (options.raw) {
      headers['content-type'] = 'application/octet-stream';
      body = options.raw;
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const timeout = options.attemptTimeoutMs === undefined ? undefined : AbortSignal.timeout(options.attemptTimeoutMs);
    const signal = timeout && options.signal ? AbortSignal.any([options.signal, timeout]) : (timeout ?? options.signal);
    const response = await exchange({ url, method, headers, body, signal, agent: this.#connections, idleTimeoutMs });
    const status = response.statusCode ?? 0;
    const text = (await readBody(response)).toString('utf8');
    if (status === 204 || text.length === 0) {
      if (status < 300) return undefined;
    }
    const parsed = text.length > 0 ? (safeJson(text) as { errors?: { code?: string; detail?: string; title?: string; meta?: Record<string, unknown> }[] }) : {};
    if (status < 300) return parsed;
    const first = parsed?.errors?.[0];
    const code = first?.code ?? 'unknown';
    const message = first?.detail ?? first?.title ?? `HTTP ${status}`;
    if (status === 401) throw new AuthError(code, message);
    throw new ProtocolError(status, code, message, first?.meta ?? {});
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
