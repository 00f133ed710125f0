// HTTP to the control plane with the job token: retries what is transient
// (connection failures, 429, 502/503/504) with jittered exponential backoff
// for up to ten minutes, so a job rides out a control plane restart; never a
// 4xx (a job token the server revoked fences a job whose lease moved on).
// Turns error responses into OutpostError with the server's code.
// The requests themselves go through Node's own client (http-exchange.ts).
import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorDocument } from '../protocol/agent-api.ts';
import { backoff } from '../protocol/backoff.ts';
import { OutpostError, isErrorCode, type ErrorCode } from '../protocol/errors.ts';
import { connectionPool, exchange, readBody } from '../protocol/http-exchange.ts';
import { CanceledError } from './cancellation.ts';

export interface RetryPolicy {
  /** No new attempt starts after this long. */
  readonly budgetMs: number;
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Ten minutes: a control plane restart or a short outage. Less than the
 * agent's budget for reporting the job's end (control-plane-client.ts), so
 * the agent can still report a job that gave up here.
 */
export const defaultRetryPolicy: RetryPolicy = { budgetMs: 10 * 60_000, firstDelayMs: 500, maxDelayMs: 10_000 };

export interface ProxySettings {
  readonly httpProxy?: string | undefined;
  readonly httpsProxy?: string | undefined;
  readonly noProxy?: string | undefined;
}

export interface TransportOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly retry?: RetryPolicy;
  readonly proxy?: ProxySettings;
  /** Told when the control plane stops answering and when it answers again (not each retry), so the run log shows why the job waits. */
  readonly onRetry?: (message: string) => void;
}

export interface ControlPlaneRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly path: string;
  /** A factory, because every retry needs a fresh body stream. */
  readonly body?: () => Buffer | string | Readable;
  readonly contentType?: string;
  /** Aborting it (a cancel) stops the request and the retries. */
  readonly signal?: AbortSignal;
}

/** A response as a handler reads it: the status, the headers and the body stream. */
export class ControlPlaneResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: IncomingMessage;

  constructor(message: IncomingMessage) {
    this.statusCode = message.statusCode ?? 0;
    this.headers = message.headers;
    this.body = message;
  }

  async text(): Promise<string> {
    return (await readBody(this.body)).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /** Reads the body to its end and drops it, so the connection can be reused. */
  async discard(): Promise<void> {
    for await (const chunk of this.body) void chunk;
  }
}

export type ResponseHandler<T> = (response: ControlPlaneResponse) => Promise<T>;

/**
 * No byte for this long ends an attempt as a connection failure (and it is
 * retried): a half-open connection must not hold a job for ever. Five
 * minutes, as undici's defaults were, because the server may take a while to
 * accept a large upload.
 */
const idleTimeoutMs = 5 * 60_000;

const retryableStatuses = new Set([429, 502, 503, 504]);

/** A failure worth another attempt; carries the message to show if attempts run out. */
class TransientFailure extends Error {
  readonly finalError: OutpostError;
  constructor(message: string, finalError: OutpostError) {
    super(message);
    this.finalError = finalError;
  }
}

export class ControlPlaneTransport {
  readonly #baseUrl: string;
  readonly #authorization: string;
  readonly #retry: RetryPolicy;
  readonly #agent: HttpAgent;
  readonly #onRetry: (message: string) => void;
  /** When the current outage began; undefined while the control plane answers. */
  #unreachableSince: number | undefined;

  constructor(options: TransportOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#authorization = `Bearer ${options.token}`;
    this.#retry = options.retry ?? defaultRetryPolicy;
    this.#onRetry = options.onRetry ?? (() => {});
    const proxy = options.proxy ?? {};
    this.#agent = connectionPool(this.#baseUrl, { proxyEnv: { HTTP_PROXY: proxy.httpProxy, HTTPS_PROXY: proxy.httpsProxy, NO_PROXY: proxy.noProxy } });
  }

  /** Sends the request; `handle` reads a 2xx response (a failure inside it is retried too). */
  async send<T>(req: ControlPlaneRequest, handle: ResponseHandler<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 1; ; attempt += 1) {
      try {
        const result = await this.#attempt(req, handle);
        this.#answered();
        return result;
      } catch (error) {
        if (req.signal?.aborted) throw new CanceledError();
        if (!(error instanceof TransientFailure)) {
          this.#answered();
          throw error;
        }
        if (Date.now() - started >= this.#retry.budgetMs) throw error.finalError;
        const delay = backoff(attempt - 1, { baseMs: this.#retry.firstDelayMs, maxMs: this.#retry.maxDelayMs });
        if (this.#unreachableSince === undefined) {
          this.#unreachableSince = Date.now();
          this.#onRetry(`${error.message}; retrying with backoff for up to ${formatDelay(this.#retry.budgetMs)}`);
        }
        try {
          await sleep(delay, undefined, { signal: req.signal });
        } catch {
          throw new CanceledError();
        }
      }
    }
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }

  #answered(): void {
    if (this.#unreachableSince === undefined) return;
    this.#onRetry(`the control plane answers again after ${formatDelay(Date.now() - this.#unreachableSince)}`);
    this.#unreachableSince = undefined;
  }

  async #attempt<T>(req: ControlPlaneRequest, handle: ResponseHandler<T>): Promise<T> {
    const where = `${req.method} ${req.path}`;
    let response: ControlPlaneResponse;
    try {
      response = await this.#request(req);
    } catch (error) {
      if (req.signal?.aborted) throw new CanceledError();
      throw connectionFailure(where, this.#baseUrl, error);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) {
      try {
        return await handle(response);
      } catch (error) {
        if (error instanceof OutpostError || error instanceof CanceledError) throw error;
        throw connectionFailure(where, this.#baseUrl, error);
      }
    }
    const failure = await errorFromResponse(where, response);
    if (retryableStatuses.has(response.statusCode)) {
      throw new TransientFailure(`${where}: the control plane answered ${response.statusCode}`, failure);
    }
    throw failure;
  }

  /** One request: resolves with the response head; the body is the handler's to read. */
  async #request(req: ControlPlaneRequest): Promise<ControlPlaneResponse> {
    const headers: Record<string, string> = { authorization: this.#authorization };
    if (req.contentType !== undefined) headers['content-type'] = req.contentType;
    const message = await exchange({
      url: `${this.#baseUrl}${req.path}`,
      method: req.method,
      headers,
      body: req.body?.(),
      agent: this.#agent,
      signal: req.signal,
      idleTimeoutMs,
    });
    return new ControlPlaneResponse(message);
  }
}

function connectionFailure(where: string, baseUrl: string, error: unknown): TransientFailure {
  const reason = error instanceof Error ? error.message : String(error);
  return new TransientFailure(
    `${where}: cannot reach the control plane (${reason})`,
    new OutpostError('unavailable', `cannot reach the control plane at ${baseUrl} (${where}: ${reason})`),
  );
}

/** Reads the JSON:API error document of a failed response into an OutpostError. */
async function errorFromResponse(where: string, response: ControlPlaneResponse): Promise<OutpostError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The status alone still says what went wrong.
  }
  let code: ErrorCode = codeForStatus(response.statusCode);
  let description = `HTTP ${response.statusCode}`;
  try {
    const first = errorDocument.parse(JSON.parse(text)).errors[0];
    if (first !== undefined) {
      if (isErrorCode(first.code)) code = first.code;
      description = first.detail ? `${first.title}: ${first.detail}` : first.title;
    }
  } catch {
    // Not an error document (a proxy's HTML page, say): keep the status.
  }
  return new OutpostError(code, `${where} failed: ${description}`, { status: response.statusCode });
}

function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 423:
      return 'state_locked';
    default:
      if (status >= 500) return 'unavailable';
      return 'invalid_request';
  }
}

function formatDelay(ms: number): string {
  if (ms >= 60_000) return `${Math.round(ms / 6_000) / 10} min`;
  return ms < 1000 ? `${Math.round(ms)}ms` : `${Math.round(ms / 100) / 10}s`;
}
