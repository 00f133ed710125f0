// For unit tests of routes: the real ServerContext and app (SQLite in a temp
// dir, no sweeper, no listening socket unless a test asks for one), driven
// with inject, plus a fake agent that claims jobs the way a real one does.
// Cheaper than test/e2e's spawned server when no engine needs to run.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions } from 'fastify';
import pino from 'pino';
import { agentPaths } from '../protocol/agent-api.ts';
import { buildApp } from './app.ts';
import { FilesystemBlobStore } from './blobs/blob-store.ts';
import { loadServerConfig } from './config.ts';
import type { ServerContext } from './context.ts';
import { openDatabase } from './db/database.ts';
import { LocalNotifier } from './notifier.ts';
import { bootstrap } from './organizations/service.ts';
import { UrlSigner } from './http/signed-urls.ts';
import { SecretSealer } from './secrets/sealer.ts';

export interface Response {
  status: number;
  body: Buffer;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are inspected ad hoc
  json: any;
}

export interface ClaimedJob {
  job_id: string;
  lease_id: string;
  job_token: string;
  kind: 'plan' | 'apply';
}

export interface InProcessServer {
  ctx: ServerContext;
  app: FastifyInstance;
  adminToken: string;
  request(method: InjectOptions['method'], url: string, options?: { token?: string; authorization?: string; json?: unknown; body?: Buffer | string; contentType?: string }): Promise<Response>;
  close(): Promise<void>;
}

export async function startInProcessServer(env: Record<string, string> = {}, logTo?: Writable): Promise<InProcessServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'outpost-unit-'));
  const adminToken = `opa_${randomBytes(20).toString('hex')}`;
  const config = loadServerConfig({ OUTPOST_DATA_DIR: dataDir, OUTPOST_BOOTSTRAP_TOKEN: adminToken, ...env });
  const db = await openDatabase({ dataDir });
  const sealingKey = randomBytes(32);
  const ctx: ServerContext = {
    config,
    db: db.kysely,
    dialect: db.dialect,
    blobs: new FilesystemBlobStore(path.join(dataDir, 'blobs')),
    notifier: new LocalNotifier(),
    sealer: new SecretSealer(sealingKey),
    signer: new UrlSigner(sealingKey),
    logger: logTo ? pino({ level: 'debug' }, logTo) : pino({ level: 'silent' }),
    publicUrl: 'http://127.0.0.1:1',
    now: () => Date.now(),
  };
  await bootstrap(ctx);
  const app = buildApp(ctx, () => false);
  await app.ready();
  return {
    ctx,
    app,
    adminToken,
    async request(method, url, options = {}) {
      const headers: Record<string, string> = { authorization: options.authorization ?? `Bearer ${options.token ?? adminToken}` };
      let payload: Buffer | string | undefined = options.body;
      if (options.json !== undefined) payload = JSON.stringify(options.json);
      if (payload !== undefined) headers['content-type'] = options.contentType ?? (options.json !== undefined ? 'application/json' : 'application/octet-stream');
      const res = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
      let json: unknown;
      try {
        json = JSON.parse(res.body);
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, body: res.rawPayload, text: res.body, json };
    },
    async close() {
      await app.close();
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function expect(response: Response, status: number, what: string): Response {
  if (response.status !== status) throw new Error(`${what}: HTTP ${response.status} ${response.text}`);
  return response;
}

/** A pool, a workspace in it, the pool's token and a registered fake agent's session token. */
export async function setupWorkspace(server: InProcessServer, options: { autoApply?: boolean } = {}): Promise<{ workspaceId: string; session: string; poolToken: string }> {
  const suffix = randomBytes(4).toString('hex');
  const pool = expect(await server.request('POST', '/api/v2/organizations/default/agent-pools', { json: { data: { type: 'agent-pools', attributes: { name: `p-${suffix}` } } } }), 201, 'pool').json.data;
  const poolToken = expect(
    await server.request('POST', `/api/v2/agent-pools/${pool.id}/authentication-tokens`, { json: { data: { type: 'authentication-tokens', attributes: {} } } }),
    201,
    'pool token',
  ).json.data.attributes.token;
  const workspace = expect(
    await server.request('POST', '/api/v2/organizations/default/workspaces', {
      json: { data: { type: 'workspaces', attributes: { name: `w-${suffix}`, 'agent-pool-id': pool.id, 'auto-apply': options.autoApply ?? false } } },
    }),
    201,
    'workspace',
  ).json.data;
  return { workspaceId: workspace.id, session: await registerAgent(server, poolToken), poolToken };
}

/** Registers another fake agent with a pool token; returns its session token. */
export async function registerAgent(server: InProcessServer, poolToken: string): Promise<string> {
  const name = `a-${randomBytes(4).toString('hex')}`;
  return expect(await server.request('POST', agentPaths.register, { token: poolToken, json: { name, version: '0.1.0', driver: 'local', concurrency: 4 } }), 201, 'register').json
    .session_token;
}

/** Queues a run on an (empty) uploaded configuration; returns the run id. */
export async function queueRun(server: InProcessServer, workspaceId: string, attributes: Record<string, unknown> = {}): Promise<string> {
  const cv = expect(
    await server.request('POST', `/api/v2/workspaces/${workspaceId}/configuration-versions`, { json: { data: { type: 'configuration-versions', attributes: {} } } }),
    201,
    'configuration version',
  ).json.data;
  expect(await server.request('PUT', `/api/v2/configuration-versions/${cv.id}/upload`, { body: Buffer.from([0x1f, 0x8b, 0, 0]) }), 200, 'upload');
  const relationships = { workspace: { data: { type: 'workspaces', id: workspaceId } }, 'configuration-version': { data: { type: 'configuration-versions', id: cv.id } } };
  return expect(await server.request('POST', '/api/v2/runs', { json: { data: { type: 'runs', attributes, relationships } } }), 201, 'run').json.data.id;
}

/** Claims the next job as the fake agent and starts it. */
export async function claimAndStart(server: InProcessServer, session: string): Promise<ClaimedJob> {
  const polled = expect(await server.request('POST', agentPaths.poll, { token: session, json: { free_slots: 1, running: [], wait_ms: 100 } }), 200, 'poll').json;
  const job = polled.jobs[0] as ClaimedJob | undefined;
  if (!job) throw new Error(`no job to claim: ${JSON.stringify(polled)}`);
  expect(await server.request('POST', agentPaths.jobStart(job.job_id), { token: session, json: { lease_id: job.lease_id } }), 204, 'start');
  return job;
}

/** Plans a run (with changes), confirms it, and returns its started apply job. */
export async function startApply(server: InProcessServer, session: string, runId: string): Promise<ClaimedJob> {
  const plan = await claimAndStart(server, session);
  expect(await server.request('POST', agentPaths.jobResult, { token: plan.job_token, json: { outcome: 'succeeded', has_changes: true } }), 204, 'plan result');
  expect(await server.request('POST', agentPaths.jobFinish(plan.job_id), { token: session, json: { lease_id: plan.lease_id, status: 'succeeded' } }), 204, 'plan finish');
  expect(await server.request('POST', `/api/v2/runs/${runId}/actions/apply`), 202, 'confirm');
  return claimAndStart(server, session);
}

export function basicAuth(jobToken: string): string {
  return `Basic ${Buffer.from(`job:${jobToken}`).toString('base64')}`;
}
