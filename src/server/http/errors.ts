// Maps every failure to the one JSON:API error document with a stable code.
// Internal errors are logged with their stack but answered without details,
// so nothing sensitive (SQL, paths, tokens) leaks into responses.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorCatalogue, OutpostError, type ErrorCode } from '../../protocol/errors.ts';

export function errorBody(code: ErrorCode, detail?: string, meta?: Record<string, unknown>) {
  const entry = errorCatalogue[code];
  return {
    errors: [
      {
        status: String(entry.status),
        code,
        title: entry.title,
        ...(detail ? { detail } : {}),
        ...(meta ? { meta } : {}),
      },
    ],
  };
}

function fromFastify(error: FastifyError): OutpostError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OutpostError('payload_too_large', 'the request body is larger than this endpoint accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OutpostError('unsupported_media_type', error.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new OutpostError('invalid_request', 'the body is not valid JSON');
    default:
      break;
  }
  if (error instanceof SyntaxError || error.statusCode === 400) {
    return new OutpostError('invalid_request', error.message);
  }
  return undefined;
}

/**
 * Errors the router raises before any handler or hook runs (the `frameworkErrors`
 * option of Fastify): a path that does not decode, a path parameter longer than
 * the router accepts. Without this they would leave in Fastify's own format.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const detail =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment of the URL is longer than any id or name'
    : error.code === 'FST_ERR_BAD_URL' ? 'the URL path is not validly percent-encoded'
    : undefined;
  if (detail === undefined) {
    request.log.error({ err: error }, 'request failed');
    void reply.status(500).send(errorBody('internal', 'an internal error occurred; see the server log'));
    return;
  }
  request.log.debug({ code: 'invalid_request', detail }, 'request refused');
  void reply.status(400).send(errorBody('invalid_request', detail));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = error instanceof OutpostError ? error : fromFastify(error);
    if (known) {
      request.log.debug({ code: known.code, detail: known.message }, 'request refused');
      void reply.status(known.status).send(errorBody(known.code, known.message, known.details));
      return;
    }
    request.log.error({ err: error }, 'request failed');
    void reply.status(500).send(errorBody('internal', 'an internal error occurred; see the server log'));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(errorBody('route_not_found', `${request.method} ${request.url.split('?')[0]} is not an endpoint`));
  });
}
