// Helpers for the bad-input and security end-to-end tests
// (api-bad-input, token-scope, hostile-archives): raw HTTP calls that keep
// every response for later leak checks, an assertion for the one error
// document (`{errors:[{status, code, title, detail}]}`), and a tar writer
// that produces what real tools refuse to: `../` names, absolute names, links
// pointing anywhere.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ErrorCode } from '../../src/protocol/errors.ts';
import { errorCatalogue } from '../../src/protocol/errors.ts';
import { sendRequest } from './json-api-client.ts';

export interface HttpResponse {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** The raw body text, as received. */
  readonly text: string;
  /** Parsed JSON when the body is JSON, else the text. */
  readonly body: unknown;
}

export interface RequestOptions {
  /** Bearer token; null sends no Authorization header. */
  readonly token?: string | null;
  /** A full Authorization header value (overrides `token`). */
  readonly authorization?: string;
  /** A JSON document, raw text (sent as JSON:API unless contentType says otherwise) or bytes. */
  readonly json?: unknown;
  readonly text?: string;
  readonly bytes?: Uint8Array;
  readonly contentType?: string;
}

/**
 * Sends requests to one server and remembers every response, so a test can
 * check at the end that no secret ever came back in one.
 */
export class HttpRecorder {
  readonly baseUrl: string;
  readonly defaultToken: string | null;
  readonly responses: HttpResponse[] = [];

  constructor(baseUrl: string, defaultToken: string | null) {
    this.baseUrl = baseUrl;
    this.defaultToken = defaultToken;
  }

  async request(method: string, urlPath: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept: 'application/vnd.api+json, application/json' };
    const token = options.token === undefined ? this.defaultToken : options.token;
    if (options.authorization !== undefined) headers.authorization = options.authorization;
    else if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | Uint8Array | undefined;
    if (options.bytes !== undefined) {
      body = options.bytes;
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
    } else if (options.text !== undefined) {
      body = options.text;
      headers['content-type'] = options.contentType ?? 'application/vnd.api+json';
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = options.contentType ?? 'application/vnd.api+json';
    }
    const response = await sendRequest(this.baseUrl, method, urlPath, headers, body);
    const recorded = { method, path: urlPath, status: response.status, text: response.text, body: response.body };
    this.responses.push(recorded);
    return recorded;
  }

  get(urlPath: string, options?: RequestOptions): Promise<HttpResponse> {
    return this.request('GET', urlPath, options);
  }

  post(urlPath: string, json: unknown, options: RequestOptions = {}): Promise<HttpResponse> {
    return this.request('POST', urlPath, { ...options, json });
  }

  /** Sends the request and asserts its status; returns the parsed body. */
  async expect<T>(method: string, urlPath: string, status: number, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, urlPath, options);
    assert.equal(response.status, status, `${method} ${urlPath}: expected ${status}, got ${describeResponse(response)}`);
    return response.body as T;
  }
}

/**
 * Sends a body with node:http and takes the response whenever it comes. A
 * server may answer an oversized upload (413) before it has read the body and
 * then close the connection; fetch reports that as a failed write (EPIPE)
 * and loses the answer, a careful client reads it. `chunked` sends no
 * Content-Length, so the server can only count the bytes as they come.
 */
export function sendEarlyAnswered(
  baseUrl: string,
  method: string,
  urlPath: string,
  token: string,
  body: Buffer,
  options: { chunked: boolean; contentType?: string },
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {
      authorization: `Bearer ${token}`,
      'content-type': options.contentType ?? 'application/octet-stream',
    };
    if (!options.chunked) headers['content-length'] = body.length;
    const request = http.request(new URL(urlPath, baseUrl), { method, headers });
    let answered = false;
    request.on('response', (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // keep the text
        }
        resolve({ method, path: `${urlPath} (${options.chunked ? 'chunked' : 'Content-Length'})`, status: response.statusCode ?? 0, text, body: parsed });
      });
    });
    // A write that fails after the answer arrived (EPIPE, ECONNRESET) is expected.
    request.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (options.chunked) {
      for (let offset = 0; offset < body.length; offset += 64 * 1024) request.write(body.subarray(offset, offset + 64 * 1024));
      request.end();
    } else {
      request.end(body);
    }
  });
}

export function describeResponse(response: Pick<HttpResponse, 'status' | 'text'>): string {
  return `HTTP ${response.status}: ${response.text.slice(0, 2000)}`;
}

interface ErrorDocument {
  errors: { status: string; code: string; title: string; detail?: string }[];
}

/**
 * Asserts that a response is the error document with this status and code,
 * that the code belongs to the catalogue with that status, and, when given,
 * that the detail mentions `detail`. `context` (a log tail, say) is appended
 * to the failure message.
 */
export function assertError(
  response: HttpResponse,
  status: number,
  code: ErrorCode,
  options: { detail?: string | RegExp; context?: () => string } = {},
): void {
  const where = `${response.method} ${response.path}`;
  const fail = (what: string): never =>
    assert.fail(`${where}: ${what}\n  got ${describeResponse(response)}${options.context ? `\n${options.context()}` : ''}`);
  if (response.status !== status) fail(`expected HTTP ${status} ${code}`);
  assert.equal(errorCatalogue[code].status, status, `test bug: ${code} is not a ${status} in the catalogue`);
  const document = response.body as Partial<ErrorDocument> | string;
  if (typeof document !== 'object' || document === null || !Array.isArray(document.errors) || document.errors.length !== 1) {
    fail('expected one error in an {errors:[…]} document');
  }
  const error = (document as ErrorDocument).errors[0]!;
  if (error.code !== code) fail(`expected code ${code}`);
  if (error.status !== String(status)) fail(`expected errors[0].status "${status}"`);
  if (typeof error.title !== 'string' || error.title === '') fail('expected a title');
  if (options.detail !== undefined) {
    const detail = error.detail ?? '';
    const matches = typeof options.detail === 'string' ? detail.includes(options.detail) : options.detail.test(detail);
    if (!matches) fail(`expected the detail to mention ${String(options.detail)}`);
  }
}

// ---------------------------------------------------------------------------
// Tokens

const tokenAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/** A well-formed token of a kind (`opa_`, `opp_`, `ops_`, `opj_`) that no server issued. */
export function unknownToken(prefix: 'opa_' | 'opp_' | 'ops_' | 'opj_'): string {
  let secret = '';
  for (let i = 0; i < 40; i++) secret += tokenAlphabet[Math.floor(Math.random() * tokenAlphabet.length)];
  return `${prefix}${secret}`;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** The places (by label) whose text contains `secret`. */
export function placesContaining(secret: string, places: Readonly<Record<string, string>>): string[] {
  return Object.entries(places)
    .filter(([, text]) => text.includes(secret))
    .map(([label]) => label);
}

// ---------------------------------------------------------------------------
// Hostile tar archives, written byte by byte (POSIX ustar)

export type TarEntry =
  | { readonly type: 'file'; readonly name: string; readonly content: string | Buffer; readonly mode?: number }
  | { readonly type: 'directory' | 'fifo'; readonly name: string }
  | { readonly type: 'symlink' | 'hardlink'; readonly name: string; readonly target: string }
  /** A POSIX extended header: its records (say `path`) override the next entry's header fields. */
  | { readonly type: 'pax'; readonly name: string; readonly records: Readonly<Record<string, string>> };

const typeFlags = { file: '0', hardlink: '1', symlink: '2', directory: '5', fifo: '6', pax: 'x' } as const;

function writeString(header: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar header field too long (${bytes.length} > ${length}): ${value}`);
  bytes.copy(header, offset);
}

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  // length - 1 octal digits and a NUL, as GNU tar and node-tar write them.
  writeString(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** One 512-byte ustar header, with the name exactly as given (no normalization). */
export function tarHeader(entry: TarEntry, size: number): Buffer {
  const header = Buffer.alloc(512);
  writeString(header, 0, 100, entry.name);
  const mode = entry.type === 'file' ? (entry.mode ?? 0o644) : entry.type === 'directory' ? 0o755 : entry.type === 'fifo' || entry.type === 'pax' ? 0o644 : 0o777;
  writeOctal(header, 100, 8, mode);
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, Math.floor(Date.now() / 1000));
  header.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  writeString(header, 156, 1, typeFlags[entry.type]);
  if (entry.type === 'symlink' || entry.type === 'hardlink') writeString(header, 157, 100, entry.target);
  writeString(header, 257, 6, 'ustar\0');
  writeString(header, 263, 2, '00');
  writeString(header, 265, 32, 'root');
  writeString(header, 297, 32, 'root');
  let sum = 0;
  for (const byte of header) sum += byte;
  writeString(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/** PAX records: `<length> <key>=<value>\n`, the length counting the whole record, itself included. */
function paxRecords(records: Readonly<Record<string, string>>): Buffer {
  const lines = Object.entries(records).map(([key, value]) => {
    const rest = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(rest) + 1;
    while (String(length).length + Buffer.byteLength(rest) !== length) length = String(length).length + Buffer.byteLength(rest);
    return `${length}${rest}`;
  });
  return Buffer.from(lines.join(''), 'utf8');
}

/** A .tar.gz of these entries, in this order, names and link targets untouched. */
export function hostileTarGz(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const content = entry.type === 'file' ? Buffer.from(entry.content) : entry.type === 'pax' ? paxRecords(entry.records) : Buffer.alloc(0);
    blocks.push(tarHeader(entry, content.length), content);
    const padding = (512 - (content.length % 512)) % 512;
    if (padding > 0) blocks.push(Buffer.alloc(padding));
  }
  blocks.push(Buffer.alloc(1024)); // end of archive: two zero blocks
  return gzipSync(Buffer.concat(blocks));
}

// ---------------------------------------------------------------------------
// Files on disk

/** Every path below `root` (files, directories, links) whose name contains `marker`. */
export async function findNamesContaining(root: string, marker: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const found: string[] = [];
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (entry.name.includes(marker)) found.push(path.join(entry.parentPath, entry.name));
  }
  return found;
}
