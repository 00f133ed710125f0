// HTTP for the API client: one place that adds the bearer token and the
// JSON:API content type, turns error responses into ApiError, and turns
// network failures into ServerUnreachableError. undici's request() is used
// rather than fetch so each call can set its own body timeout: log streams
// may stay quiet for minutes while a run waits for an agent. It is loaded on
// the first request: `outpost agent run` and `outpost server` build this
// client with the CLI but never call it, and undici costs them ~20 MiB.
import type { Dispatcher } from 'undici';
import { jsonApiMediaType } from '../protocol/api-inputs.ts';
import { ApiError, ServerUnreachableError, apiErrorFromResponse } from './api-error.ts';

export interface TransportOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8480 (no trailing slash needed). */
  readonly url: string;
  readonly token: string;
  readonly userAgent?: string;
  /** Longest wait for response headers, and for the next body bytes of ordinary calls. */
  readonly timeoutMs?: number;
}

export interface SendOptions {
  readonly body?: string | Uint8Array;
  readonly contentType?: string;
  readonly accept?: string;
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  /** Longest wait for the response headers; 0 waits forever. */
  readonly headersTimeoutMs?: number;
  /** Longest silence while reading the body; 0 waits forever. */
  readonly bodyTimeoutMs?: number;
}

export class ApiTransport {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #userAgent: string;
  readonly #timeoutMs: number;

  constructor(options: TransportOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.#token = options.token;
    this.#userAgent = options.userAgent ?? 'outpost-cli';
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** Sends a JSON:API request and returns the parsed document (undefined for an empty 2xx body). */
  async json<T>(method: Dispatcher.HttpMethod, target: string, document?: unknown, options: SendOptions = {}): Promise<T | undefined> {
    const body = document === undefined ? undefined : JSON.stringify(document);
    const response = await this.send(method, target, { ...options, body });
    const text = await this.#readText(response);
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError({ status: response.statusCode, code: 'internal', detail: `the server's answer to ${method} ${target} is not JSON` });
    }
  }

  /** Like json(), for calls whose answer must carry `data`. */
  async data<T>(method: Dispatcher.HttpMethod, target: string, document?: unknown): Promise<T> {
    const parsed = await this.json<{ data?: T }>(method, target, document);
    if (parsed?.data === undefined) {
      throw new ApiError({ status: 502, code: 'internal', detail: `the server's answer to ${method} ${target} has no data` });
    }
    return parsed.data;
  }

  /**
   * Every item of a paginated list: pages of 100, followed by
   * `meta.pagination.next-page` (a server without pagination sends one page).
   */
  async allPages<T>(target: string): Promise<T[]> {
    const items: T[] = [];
    const separator = target.includes('?') ? '&' : '?';
    for (let page = 1; page <= 10_000; ) {
      const parsed = await this.json<{ data?: T[]; meta?: { pagination?: { 'next-page'?: number | null } } }>(
        'GET',
        `${target}${separator}page%5Bsize%5D=100&page%5Bnumber%5D=${page}`,
      );
      if (!Array.isArray(parsed?.data)) throw new ApiError({ status: 502, code: 'internal', detail: `the server's answer to GET ${target} has no data` });
      items.push(...parsed.data);
      const next = parsed.meta?.pagination?.['next-page'];
      if (typeof next !== 'number' || next <= page) break;
      page = next;
    }
    return items;
  }

  /** Reads a whole non-JSON body (state files, logs) as bytes. */
  async bytes(method: Dispatcher.HttpMethod, target: string, options: SendOptions = {}): Promise<Buffer> {
    const response = await this.send(method, target, options);
    try {
      return Buffer.from(await response.body.arrayBuffer());
    } catch (error) {
      throw new ServerUnreachableError(this.baseUrl, error, true);
    }
  }

  /** Hands each body chunk to onChunk the moment it arrives. */
  async stream(target: string, onChunk: (chunk: Buffer) => void, options: SendOptions = {}): Promise<void> {
    const response = await this.send('GET', target, options);
    try {
      for await (const chunk of response.body) onChunk(chunk as Buffer);
    } catch (error) {
      throw new ServerUnreachableError(this.baseUrl, error, true);
    }
  }

  /** Sends a request; throws unless the answer is 2xx. The caller must consume the body. */
  async send(method: Dispatcher.HttpMethod, target: string, options: SendOptions = {}): Promise<Dispatcher.ResponseData> {
    const url = this.#resolve(target, options.query);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: options.accept ?? jsonApiMediaType,
      'user-agent': this.#userAgent,
    };
    if (options.body !== undefined) headers['content-type'] = options.contentType ?? jsonApiMediaType;
    let response: Dispatcher.ResponseData;
    try {
      const { request } = await import('undici');
      response = await request(url, {
        method,
        headers,
        body: options.body,
        headersTimeout: options.headersTimeoutMs ?? this.#timeoutMs,
        bodyTimeout: options.bodyTimeoutMs ?? this.#timeoutMs,
      });
    } catch (error) {
      throw new ServerUnreachableError(this.baseUrl, error);
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = await response.body.text().catch(() => '');
      throw apiErrorFromResponse(response.statusCode, text, url);
    }
    return response;
  }

  async #readText(response: Dispatcher.ResponseData): Promise<string> {
    try {
      return await response.body.text();
    } catch (error) {
      throw new ServerUnreachableError(this.baseUrl, error, true);
    }
  }

  #resolve(target: string, query: SendOptions['query']): string {
    // Absolute URLs (an upload-url the server handed out) are used as given.
    const url = new URL(/^https?:\/\//.test(target) ? target : `${this.baseUrl}${target}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }
}
