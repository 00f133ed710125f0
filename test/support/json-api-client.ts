// Calls the control plane's JSON:API as a test client would: bearer token,
// JSON:API content type, and the answer parsed when it is JSON. ServerHandle.api
// is this with the server's URL and admin token (and, for a server that
// serves HTTPS with a test CA, a dispatcher that trusts it).
import { fetch as undiciFetch, type Dispatcher } from 'undici';

export interface ApiResponse<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON when the response is JSON, else the text. */
  readonly body: T;
}

export interface ApiOptions {
  /** Another bearer token (an agent's, a revoked one); null sends none. */
  readonly token?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
  /** Connects through this (an undici Agent trusting a test CA); Node's default otherwise. */
  readonly dispatcher?: Dispatcher;
}

/** What a raw exchange answered: the text as received, and the parsed JSON when it is JSON. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Parsed JSON when the response is JSON, else the text. */
  readonly body: unknown;
}

/**
 * One HTTP exchange with the headers given and the body as is: the one
 * place tests send a request to the API and read its answer.
 */
export async function sendRequest(
  baseUrl: string,
  method: string,
  urlPath: string,
  headers: Readonly<Record<string, string>>,
  body?: string | Uint8Array,
  dispatcher?: Dispatcher,
  signal?: AbortSignal,
): Promise<RawResponse> {
  const url = new URL(urlPath, baseUrl);
  const init = { method, headers: { ...headers }, body, ...(signal ? { signal } : {}) };
  // undici's own fetch with its own Agent: Node's built-in fetch bundles
  // another undici, whose dispatcher interface need not match the package's.
  const response = dispatcher === undefined ? await fetch(url, init) : ((await undiciFetch(url, { ...init, dispatcher })) as unknown as Response);
  const text = await response.text();
  let parsed: unknown = text;
  if (text !== '' && /json/i.test(response.headers.get('content-type') ?? '')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // Keep the text: a test asserting on a malformed answer wants to see it.
    }
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

/** What ServerHandle.api does, for any base URL and token. */
export async function callApi<T = unknown>(
  baseUrl: string,
  adminToken: string,
  method: string,
  urlPath: string,
  body: unknown,
  options: ApiOptions = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/vnd.api+json' };
  const token = options.token === undefined ? adminToken : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let payload: string | Uint8Array | undefined;
  // Content-Type only with a body: servers reject an empty body declared JSON.
  if (body instanceof Uint8Array) {
    payload = body;
    headers['content-type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/vnd.api+json';
  }
  Object.assign(headers, options.headers);
  const response = await sendRequest(baseUrl, method, urlPath, headers, payload, options.dispatcher);
  return { status: response.status, headers: response.headers, body: response.body as T };
}
