// Fetching release files over HTTP(S): the small SHA256SUMS text, and the zip
// streamed to disk and hashed as it is written, so a 90 MB release never sits
// in memory and needs no second read to be verified.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher, request as undiciRequest } from 'undici';
import { redactUrl } from './release-files.ts';

/** A release file could not be fetched. `url` is already redacted; `reason` is short, for a run log. */
export class DownloadFailed extends Error {
  readonly url: string;
  readonly reason: string;
  /** The HTTP status when the server answered with one other than 200. */
  readonly status: number | undefined;

  constructor(url: string, reason: string, status?: number) {
    const safeUrl = redactUrl(url);
    super(`${safeUrl}: ${reason}`);
    this.name = 'DownloadFailed';
    this.url = safeUrl;
    this.reason = reason;
    this.status = status;
  }
}

/** A connection pool, or a way to make it on first use (so that undici loads only when something is downloaded). */
export type UpstreamDispatcher = Dispatcher | (() => Promise<Dispatcher>);

export interface DownloadContext {
  /** Aborts the whole download (the agent's download timeout). */
  signal: AbortSignal;
  /** The timeout behind `signal`, to say how long we waited. */
  timeoutMs: number;
  dispatcher?: UpstreamDispatcher | undefined;
  /** Sent with the request (an upstream's credentials), in addition to URL credentials. */
  headers?: Readonly<Record<string, string>> | undefined;
  /** Largest body fetchText() accepts; default 1 MiB. */
  maxTextBytes?: number | undefined;
}

/**
 * undici, loaded on the first download: an agent whose engines are cached
 * never needs it, and it costs an idle agent about 20 MiB.
 */
let client: Promise<HttpClient> | undefined;

interface HttpClient {
  request: typeof undiciRequest;
  followRedirects: Dispatcher;
}

function httpClient(): Promise<HttpClient> {
  client ??= import('undici').then(({ EnvHttpProxyAgent, interceptors, request }) => ({
    request,
    // GitHub release assets answer with a redirect to their storage host.
    // HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply as they do to the provider
    // cache: without them this is a plain connection pool.
    followRedirects: new EnvHttpProxyAgent().compose(interceptors.redirect({ maxRedirections: 5 })),
  }));
  return client;
}

const maxSumsBytes = 1024 * 1024;

/** The body of a small text file (a SHA256SUMS file, a JSON document). */
export async function fetchText(url: string, context: DownloadContext): Promise<string> {
  return (await fetchBytes(url, context)).toString('utf8');
}

/** The body of a small file (a text file, a detached signature), at most `maxTextBytes`. */
export async function fetchBytes(url: string, context: DownloadContext): Promise<Buffer> {
  const body = await openBody(url, context);
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    const maxBytes = context.maxTextBytes ?? maxSumsBytes;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw new DownloadFailed(url, `response larger than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } catch (error) {
    throw asDownloadFailed(error, url, context);
  }
}

/** Streams `url` into a new file at `target` and returns the SHA-256 (hex) of what was written. */
export async function downloadToFile(url: string, target: string, context: DownloadContext): Promise<string> {
  const body = await openBody(url, context);
  const hash = createHash('sha256');
  try {
    await pipeline(
      body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          yield chunk;
        }
      },
      // `wx`: the name is fresh and ours; never write through someone else's file.
      createWriteStream(target, { flags: 'wx', mode: 0o600 }),
    );
  } catch (error) {
    throw asDownloadFailed(error, url, context);
  }
  return hash.digest('hex');
}

async function openBody(url: string, context: DownloadContext): Promise<Dispatcher.ResponseData['body']> {
  const { target, authorization } = splitCredentials(url);
  let response: Dispatcher.ResponseData;
  try {
    const { request, followRedirects } = await httpClient();
    response = await request(target, {
      method: 'GET',
      headers: { ...context.headers, ...(authorization === undefined ? {} : { authorization }) },
      signal: context.signal,
      dispatcher: (typeof context.dispatcher === 'function' ? await context.dispatcher() : context.dispatcher) ?? followRedirects,
    });
  } catch (error) {
    throw asDownloadFailed(error, url, context);
  }
  if (response.statusCode !== 200) {
    await response.body.dump().catch(() => undefined);
    throw new DownloadFailed(url, `HTTP ${response.statusCode}`, response.statusCode);
  }
  return response.body;
}

// A mirror URL may carry `user:password@`; undici does not send those, so they
// become a Basic authorization header (dropped by undici on cross-origin redirects).
function splitCredentials(url: string): { target: string; authorization: string | undefined } {
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return { target: url, authorization: undefined };
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  const token = Buffer.from(`${user}:${password}`).toString('base64');
  return { target: parsed.toString(), authorization: `Basic ${token}` };
}

const reasonsByCode: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'the server stopped responding',
  UND_ERR_BODY_TIMEOUT: 'the server stopped responding',
  UND_ERR_SOCKET: 'connection closed',
};

function asDownloadFailed(error: unknown, url: string, context: DownloadContext): DownloadFailed {
  if (error instanceof DownloadFailed) return error;
  if (context.signal.aborted) return new DownloadFailed(url, `timed out after ${formatDuration(context.timeoutMs)}`);
  return new DownloadFailed(url, describeError(error));
}

function describeError(error: unknown): string {
  const code = errorCode(error) ?? errorCode((error as { cause?: unknown } | null)?.cause);
  if (code !== undefined && reasonsByCode[code] !== undefined) return reasonsByCode[code];
  const message = error instanceof Error ? error.message : String(error);
  const text = code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
  return redactUrl(text).slice(0, 200);
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function formatDuration(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
