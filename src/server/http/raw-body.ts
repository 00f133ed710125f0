// Routes whose bodies are documents to store, not requests to interpret: the
// engine's state (sent as application/json), saved plans and their JSON.
// Parsing and re-serializing them would change the bytes (integers beyond
// 2^53, "__proto__" keys refused by the safe parser, key order, whitespace)
// and build an object graph as large as the upload. Inside this scope every
// body, whatever its content type, reaches the handler as the Buffer sent.
import type { FastifyInstance } from 'fastify';

export function rawBodyRoutes(app: FastifyInstance, routes: (scope: FastifyInstance) => void): void {
  // A registered plugin is its own encapsulation context: the parser below
  // replaces the app's parsers for these routes only.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    routes(scope);
  });
}

/** The body of a request in a rawBodyRoutes scope (empty when there was none). */
export function bodyBytes(body: unknown): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}
