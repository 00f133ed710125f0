// The agent's side of the protocol (/api/agent/v1). Transient failures
// (connection errors, 5xx, 429) are retried with jittered exponential
// backoff, so agents ride out a server restart; 401 becomes AuthError so the
// agent can stop with a clear message instead of retrying forever.
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent as HttpAgent, request } from 'undici';
import type { Logger } from 'pino';
import {
  agentPaths,
  heartbeatResponse,
  logAppendResponse,
  pollResponse,
  registerResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JobFinishRequest,
  type PollRequest,
  type PollResponse,
  type RegisterRequest,
  type RegisterResponse,
} from '../protocol/agent-api.ts';

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
  signal?: AbortSignal | undefined;
  /** Stop retrying after this long; undefined retries until the signal aborts. */
  retryForMs?: number;
}

export class ControlPlaneClient {
  readonly #url: string;
  readonly #logger: Logger;
  // Long-polls need a body timeout longer than the server's poll timeout.
  readonly #dispatcher = new HttpAgent({ bodyTimeout: 120_000, headersTimeout: 120_000, keepAliveTimeout: 60_000 });

  constructor(url: string, logger: Logger) {
    this.#url = url;
    this.#logger = logger;
  }

  async register(poolToken: string, body: RegisterRequest): Promise<RegisterResponse> {
    return registerResponse.parse(await this.#call('POST', agentPaths.register, { token: poolToken, body, retryForMs: 5 * 60_000 }));
  }

  async deregister(session: string): Promise<void> {
    await this.#call('POST', agentPaths.deregister, { token: session, body: {}, retryForMs: 5_000 });
  }

  async poll(session: string, body: PollRequest, signal: AbortSignal): Promise<PollResponse> {
    return pollResponse.parse(await this.#call('POST', agentPaths.poll, { token: session, body, signal, retryForMs: 0 }));
  }

  async heartbeat(session: string, body: HeartbeatRequest): Promise<HeartbeatResponse> {
    return heartbeatResponse.parse(await this.#call('POST', agentPaths.heartbeat, { token: session, body, retryForMs: 0 }));
  }

  async startJob(session: string, jobId: string, leaseId: string): Promise<void> {
    await this.#call('POST', agentPaths.jobStart(jobId), { token: session, body: { lease_id: leaseId }, retryForMs: 60_000 });
  }

  async appendLog(session: string, jobId: string, leaseId: string, offset: number, data: Buffer, signal?: AbortSignal): Promise<number> {
    const result = await this.#call('PUT', agentPaths.jobLogs(jobId), { token: session, raw: data, query: { lease_id: leaseId, offset }, signal, retryForMs: 0 });
    return logAppendResponse.parse(result).size;
  }

  async reportLost(session: string, jobId: string, leaseId: string): Promise<void> {
    await this.#call('POST', agentPaths.jobLost(jobId), { token: session, body: { lease_id: leaseId }, retryForMs: 30_000 });
  }

  async finishJob(session: string, jobId: string, body: JobFinishRequest, signal?: AbortSignal): Promise<void> {
    await this.#call('POST', agentPaths.jobFinish(jobId), { token: session, body, signal });
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async #call(method: 'GET' | 'POST' | 'PUT', path: string, options: CallOptions): Promise<unknown> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(method, path, options);
      } catch (error) {
        const transient = !(error instanceof AuthError) && (!(error instanceof ProtocolError) || error.status >= 500 || error.status === 429);
        const budget = options.retryForMs;
        const outOfTime = budget !== undefined && Date.now() - started >= budget;
        if (!transient || outOfTime || options.signal?.aborted) throw error;
        const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7)) * (0.5 + Math.random() / 2);
        this.#logger.warn({ path, attempt: attempt + 1, retryInMs: Math.round(delay), err: (error as Error).message }, 'control plane request failed; retrying');
        await sleep(delay, undefined, { signal: options.signal }).catch(() => undefined);
      }
    }
  }

  async #once(method: string, path: string, options: CallOptions): Promise<unknown> {
    const url = new URL(this.#url + path);
    for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
    let body: string | Buffer | undefined;
    if (options.raw) {
      headers['content-type'] = 'application/octet-stream';
      body = options.raw;
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const response = await request(url, { method: method as 'POST', headers, body, signal: options.signal, dispatcher: this.#dispatcher });
    const text = await response.body.text();
    if (response.statusCode === 204 || text.length === 0) {
      if (response.statusCode < 300) return undefined;
    }
    const parsed = text.length > 0 ? (safeJson(text) as { errors?: { code?: string; detail?: string; title?: string; meta?: Record<string, unknown> }[] }) : {};
    if (response.statusCode < 300) return parsed;
    const first = parsed?.errors?.[0];
    const code = first?.code ?? 'unknown';
    const message = first?.detail ?? first?.title ?? `HTTP ${response.statusCode}`;
    if (response.statusCode === 401) throw new AuthError(code, message);
    throw new ProtocolError(response.statusCode, code, message, first?.meta ?? {});
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
