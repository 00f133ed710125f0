// Builds the HTTP application: parsers, error handling, and every route group.
import type { SecureContextOptions } from 'node:tls';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { OutpostError } from '../protocol/errors.ts';
import type { ServerContext } from './context.ts';
import { agentProtocolRoutes } from './agents/protocol-routes.ts';
import { agentRoutes } from './agents/routes.ts';
import { configurationVersionRoutes } from './configuration-versions/routes.ts';
import { healthRoutes } from './health-routes.ts';
import { tfeDiscoveryRoutes } from './tfe-discovery-routes.ts';
import { productVersion } from '../protocol/product-version.ts';
import { frameworkErrors, installErrorHandling } from './http/errors.ts';
import { jobTokenRoutes } from './jobs/job-token-routes.ts';
import { logRoutes } from './logs/routes.ts';
import { metricsRoutes } from './metrics-routes.ts';
import { organizationRoutes } from './organizations/routes.ts';
import { poolRoutes } from './pools/routes.ts';
import { webhookRoutes } from './webhooks/routes.ts';
import { runRoutes } from './runs/routes.ts';
import { stateBackendRoutes } from './state/backend-routes.ts';
import { stateRoutes } from './state/routes.ts';
import { workspaceLockRoutes } from './state/lock-routes.ts';
import { variableRoutes } from './variables/routes.ts';
import { vcsRelayRoutes } from './vcs/relay-routes.ts';
import { vcsRoutes } from './vcs/routes.ts';
import { workspaceRoutes } from './workspaces/routes.ts';

export interface AppOptions {
  /** Serve HTTPS with these (src/server/tls.ts); plain HTTP without. */
  readonly https?: SecureContextOptions;
}

export function buildApp(ctx: ServerContext, isShuttingDown: () => boolean, options: AppOptions = {}): FastifyInstance {
  // Fastify types an HTTPS instance apart; routes and hooks are the same for both.
  const app = Fastify({
    ...(options.https ? { https: options.https } : {}),
    loggerInstance: ctx.logger as FastifyBaseLogger,
    // Heartbeats and polls would drown the log; requests are logged at debug below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // Long-polls and log streams outlive the default timeouts.
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    // Long-polls would hold shutdown for their full wait; agents retry anyway.
    forceCloseConnections: true,
    // Router errors (undecodable paths, over-long ids) answer with the error document too.
    frameworkErrors,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  // JSON:API documents are JSON; archives, plans and log chunks are bytes.
  // An empty body is no body (TFE clients send the JSON content type on
  // bodiless actions); anything else goes through Fastify's safe parser.
  const json = app.getDefaultJsonParser('error', 'ignore');
  const jsonOrEmpty: typeof json = (request, body, done) => (body === '' || (Buffer.isBuffer(body) && body.length === 0) ? done(null, undefined) : json(request, body, done));
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'application/vnd.api+json'], { parseAs: 'string' }, jsonOrEmpty);
  app.addContentTypeParser(['application/octet-stream', 'application/gzip', 'application/x-gzip', 'text/plain'], { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.addHook('onResponse', (request, reply, done) => {
    request.log.debug({ method: request.method, path: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });

  // No id, name or query value contains a NUL character, and PostgreSQL cannot
  // even compare text with one: refuse such a URL before any handler looks it up.
  app.addHook('onRequest', async (request) => {
    if (/%00/i.test(request.url)) throw new OutpostError('invalid_request', 'the URL contains a NUL character (%00)');
  });

  installErrorHandling(app);
  if (ctx.config.metricsEnabled) metricsRoutes(app, ctx);
  healthRoutes(app, ctx, isShuttingDown);
  tfeDiscoveryRoutes(app, productVersion);
  organizationRoutes(app, ctx);
  poolRoutes(app, ctx);
  webhookRoutes(app, ctx);
  agentRoutes(app, ctx);
  workspaceRoutes(app, ctx);
  variableRoutes(app, ctx);
  configurationVersionRoutes(app, ctx);
  runRoutes(app, ctx);
  logRoutes(app, ctx);
  stateRoutes(app, ctx);
  workspaceLockRoutes(app, ctx);
  agentProtocolRoutes(app, ctx);
  jobTokenRoutes(app, ctx);
  stateBackendRoutes(app, ctx);
  vcsRoutes(app, ctx);
  vcsRelayRoutes(app, ctx);
  return app;
}
