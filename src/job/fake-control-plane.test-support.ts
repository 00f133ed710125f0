// An in-memory stand-in for the control plane's job-token endpoints, for the
// job operation's tests: spec, configuration, plan files, result, and the
// http state backend the engine talks to (state + lock, with OpenTofu's
// semantics). The real server has its own end-to-end tests; this one only
// has to be faithful enough that a real `tofu` is happy with it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { agentPaths, type JobResult, type JobSpec } from '../protocol/agent-api.ts';

export interface LockInfo {
  ID: string;
  [field: string]: unknown;
}

export interface FakeControlPlane {
  readonly url: string;
  readonly token: string;
  spec: JobSpec | undefined;
  configuration: Buffer | undefined;
  plan: Buffer | undefined;
  planJson: Buffer | undefined;
  state: Buffer | undefined;
  lock: LockInfo | undefined;
  readonly results: JobResult[];
  /** "METHOD path" of every request, in order. */
  readonly requests: string[];
  /** Paths that answer 503 this many more times before working (to test retries). */
  readonly unavailable: Map<string, number>;
  close(): Promise<void>;
}

export async function startFakeControlPlane(token: string): Promise<FakeControlPlane> {
  const server = createServer((request, response) => {
    void handle(plane, request, response).catch((error: unknown) => {
      sendError(response, 500, 'internal', String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const plane: FakeControlPlane = {
    url: `http://127.0.0.1:${port}`,
    token,
    spec: undefined,
    configuration: undefined,
    plan: undefined,
    planJson: undefined,
    state: undefined,
    lock: undefined,
    results: [],
    requests: [],
    unavailable: new Map(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return plane;
}

async function handle(plane: FakeControlPlane, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', plane.url);
  const method = request.method ?? 'GET';
  const route = `${method} ${url.pathname}`;
  plane.requests.push(route);
  const body = await readBody(request);
  const failures = plane.unavailable.get(url.pathname) ?? 0;
  if (failures > 0) {
    plane.unavailable.set(url.pathname, failures - 1);
    return sendError(response, 503, 'unavailable', 'starting up');
  }
  if (!authorized(plane, request)) return sendError(response, 401, 'token_invalid', 'bad job token');

  switch (route) {
    case `GET ${agentPaths.jobSpec}`:
      return send(response, 200, 'application/json', JSON.stringify(plane.spec));
    case `GET ${agentPaths.jobConfiguration}`:
      if (plane.configuration === undefined) return sendError(response, 404, 'not_found', 'no configuration version');
      return send(response, 200, 'application/gzip', plane.configuration);
    case `PUT ${agentPaths.jobPlan}`:
      plane.plan = body;
      return send(response, 204);
    case `GET ${agentPaths.jobPlan}`:
      if (plane.plan === undefined) return sendError(response, 404, 'not_found', 'no saved plan');
      return send(response, 200, 'application/octet-stream', plane.plan);
    case `PUT ${agentPaths.jobPlanJson}`:
      plane.planJson = body;
      return send(response, 204);
    case `POST ${agentPaths.jobResult}`:
      plane.results.push(JSON.parse(body.toString('utf8')) as JobResult);
      return send(response, 204);
    case `GET ${agentPaths.jobState}`:
      return plane.state === undefined ? send(response, 204) : send(response, 200, 'application/json', plane.state);
    case `POST ${agentPaths.jobState}`: {
      if (plane.lock !== undefined && url.searchParams.get('ID') !== plane.lock.ID) {
        return sendError(response, 409, 'state_lock_mismatch', 'the state is locked by someone else');
      }
      plane.state = body;
      return send(response, 200);
    }
    case `POST ${agentPaths.jobStateLock}`: {
      if (plane.lock !== undefined) return send(response, 423, 'application/json', JSON.stringify(plane.lock));
      plane.lock = JSON.parse(body.toString('utf8')) as LockInfo;
      return send(response, 200);
    }
    case `DELETE ${agentPaths.jobStateLock}`: {
      const info = body.length > 0 ? (JSON.parse(body.toString('utf8')) as LockInfo) : undefined;
      if (plane.lock !== undefined && info?.ID !== plane.lock.ID) {
        return send(response, 409, 'application/json', JSON.stringify(plane.lock));
      }
      plane.lock = undefined;
      return send(response, 200);
    }
    default:
      return sendError(response, 404, 'route_not_found', route);
  }
}

/** The operation sends the job token as a bearer token; the engine's http backend as Basic job:<token>. */
function authorized(plane: FakeControlPlane, request: IncomingMessage): boolean {
  const header = request.headers.authorization ?? '';
  if (header === `Bearer ${plane.token}`) return true;
  return header === `Basic ${Buffer.from(`job:${plane.token}`).toString('base64')}`;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(response: ServerResponse, status: number, contentType?: string, body?: string | Buffer): void {
  response.writeHead(status, contentType === undefined ? {} : { 'content-type': contentType });
  response.end(body);
}

function sendError(response: ServerResponse, status: number, code: string, detail: string): void {
  const document = { errors: [{ status: String(status), code, title: code.replace(/_/g, ' '), detail }] };
  send(response, status, 'application/json', JSON.stringify(document));
}
