// One HTTP request to the control plane with Node's own client, shared by the
// agent (control-plane-client.ts) and the job operation
// (control-plane-transport.ts). Not undici: both are processes that must stay
// small (an idle agent, one operation per job), and loading undici cost each
// about 30 MiB and 40 ms (docs/benchmarks.md, "Footprint"). Node's client is
// already in the binary, keeps connections alive through its Agent, and
// honours the proxy variables through the Agent's `proxyEnv`.
import type { Agent, IncomingMessage } from 'node:http';
import { Readable, pipeline } from 'node:stream';

// Not `import … from 'node:http'`: an ES import copies every export of the
// module, including the lazy WebSocket ones that load Node's bundled undici,
// about 10 MiB and 20 ms more per process (measured).
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

export interface AgentSettings {
  /** HTTP_PROXY / HTTPS_PROXY / NO_PROXY, read by the Agent; none: no proxy. */
  readonly proxyEnv?: Readonly<Record<string, string | undefined>>;
  /** An idle pooled connection is closed after this long (shorter than the server's keep-alive). */
  readonly freeSocketTimeoutMs?: number;
}

/** A keep-alive connection pool for URLs of `baseUrl`'s scheme. */
export function connectionPool(baseUrl: string, settings: AgentSettings = {}): Agent {
  const options = { keepAlive: true, timeout: settings.freeSocketTimeoutMs ?? 60_000, ...(settings.proxyEnv ? { proxyEnv: settings.proxyEnv } : {}) };
  return new URL(baseUrl).protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

export interface Exchange {
  readonly url: string | URL;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** A stream is piped (and closed on any failure); a buffer or string is sent whole. */
  readonly body?: Buffer | string | Readable | undefined;
  readonly agent: Agent;
  readonly signal?: AbortSignal | undefined;
  /** No byte either way for this long fails the exchange (a half-open connection must not hang a caller). */
  readonly idleTimeoutMs: number;
}

/** Sends the request; resolves with the response head, its body left to the caller to read. */
export function exchange(request: Exchange): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const url = typeof request.url === 'string' ? new URL(request.url) : request.url;
    const client = url.protocol === 'https:' ? https : http;
    const outgoing = client.request(url, {
      method: request.method,
      headers: request.headers,
      agent: request.agent,
      timeout: request.idleTimeoutMs,
      ...(request.signal === undefined ? {} : { signal: request.signal }),
    });
    const idle = request.idleTimeoutMs < 1000 ? `${request.idleTimeoutMs} ms` : `${Math.round(request.idleTimeoutMs / 1000)} s`;
    const stalled = `no answer for ${idle}`;
    outgoing.on('timeout', () => outgoing.destroy(new Error(stalled)));
    outgoing.on('error', reject);
    outgoing.on('response', (message) => {
      message.setTimeout(request.idleTimeoutMs, () => message.destroy(new Error(`the response stalled: ${stalled}`)));
      resolve(message);
    });
    const body = request.body;
    if (body === undefined) outgoing.end();
    else if (body instanceof Readable) pipeline(body, outgoing, () => {});
    else outgoing.end(body);
  });
}

/** The whole body of a response. */
export async function readBody(message: IncomingMessage): Promise<Buffer> {
  return Buffer.concat(await message.toArray());
}
