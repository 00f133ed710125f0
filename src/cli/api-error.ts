// Errors the API client throws. An ApiError carries what the server said (its
// error document: status, stable code, detail); ServerUnreachableError means
// no HTTP answer came back at all. The CLI maps both to exit codes
// (exit-codes.ts), so callers never need to look at HTTP details.
import { errorCatalogue, isErrorCode, type ErrorCode } from '../protocol/errors.ts';

export interface ApiErrorFields {
  readonly status: number;
  /** A code from src/protocol/errors.ts, or whatever a non-Outpost server (a proxy) implied. */
  readonly code: ErrorCode | (string & {});
  readonly detail: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode | (string & {});
  readonly detail: string;

  constructor(fields: ApiErrorFields) {
    super(fields.detail);
    this.name = 'ApiError';
    this.status = fields.status;
    this.code = fields.code;
    this.detail = fields.detail;
  }

  get isAuthFailure(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

export class ServerUnreachableError extends Error {
  readonly url: string;
  /**
   * The server had started answering when the connection failed (or went
   * quiet for too long): reconnecting is worth trying at once, unlike after
   * a refused connection.
   */
  readonly afterResponse: boolean;

  constructor(url: string, cause: unknown, afterResponse = false) {
    const verb = afterResponse ? 'lost the connection to' : 'cannot reach';
    super(`${verb} the Outpost server at ${url}: ${describeNetworkCause(cause)}`, { cause });
    this.name = 'ServerUnreachableError';
    this.url = url;
    this.afterResponse = afterResponse;
  }
}

function describeNetworkCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message;
}

/**
 * Builds the error for a non-2xx response. Outpost answers with a JSON:API
 * error document; anything else (a proxy's HTML page, an empty body) still
 * becomes an ApiError with the catalogue code closest to the HTTP status.
 */
export function apiErrorFromResponse(status: number, body: string, url: string): ApiError {
  const first = firstErrorObject(body);
  if (first !== undefined) {
    const code = typeof first.code === 'string' && first.code !== '' ? first.code : codeForStatus(status);
    const detail = [first.detail, first.title].find((text) => typeof text === 'string' && text !== '') as string | undefined;
    return new ApiError({ status, code, detail: detail ?? titleOf(code, status) });
  }
  const code = codeForStatus(status);
  const snippet = body.trim().slice(0, 200);
  const detail = `HTTP ${status} from ${url}${snippet === '' || snippet.startsWith('<') ? '' : `: ${snippet}`}`;
  return new ApiError({ status, code, detail });
}

interface ErrorObject {
  readonly code?: unknown;
  readonly title?: unknown;
  readonly detail?: unknown;
}

function firstErrorObject(body: string): ErrorObject | undefined {
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    const first = Array.isArray(parsed.errors) ? (parsed.errors[0] as unknown) : undefined;
    return typeof first === 'object' && first !== null ? (first as ErrorObject) : undefined;
  } catch {
    return undefined;
  }
}

function titleOf(code: string, status: number): string {
  return isErrorCode(code) ? errorCatalogue[code].title : `HTTP ${status}`;
}

const codeByStatus: Readonly<Record<number, ErrorCode>> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'validation_failed',
  423: 'state_locked',
  503: 'unavailable',
};

function codeForStatus(status: number): ErrorCode {
  return codeByStatus[status] ?? (status >= 500 ? 'internal' : 'invalid_request');
}
