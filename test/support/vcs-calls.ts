// API calls of version control for end-to-end tests: providers, repository
// links, what version control did for a workspace, and its runs by commit.
import http from 'node:http';
import type { Run, VcsProvider, VcsTrigger, Workspace } from '../../src/protocol/api-resources.ts';
import { apiCall } from './api-calls.ts';
import type { ServerHandle, TestHooks } from './cluster.ts';
import { waitUntil } from './waits.ts';

export interface CreatedProvider {
  readonly id: string;
  readonly webhookSecret: string;
  readonly webhookUrl: string | null;
  readonly resource: VcsProvider;
}

export async function createVcsProvider(server: ServerHandle, attributes: Record<string, unknown>): Promise<CreatedProvider> {
  const { data } = await apiCall<{ data: VcsProvider }>(server, 'POST', '/api/v2/organizations/default/vcs-providers', { data: { type: 'vcs-providers', attributes } }, 201);
  return { id: data.id, webhookSecret: data.attributes['webhook-secret']!, webhookUrl: data.attributes['webhook-url'], resource: data };
}

export async function linkRepository(server: ServerHandle, workspaceId: string, attributes: Record<string, unknown>): Promise<Workspace> {
  return (await apiCall<{ data: Workspace }>(server, 'PATCH', `/api/v2/workspaces/${workspaceId}`, { data: { type: 'workspaces', attributes } }, 200)).data;
}

export async function vcsTriggers(server: ServerHandle, workspaceId: string): Promise<VcsTrigger[]> {
  return (await apiCall<{ data: VcsTrigger[] }>(server, 'GET', `/api/v2/workspaces/${workspaceId}/vcs-triggers?page[size]=100`, undefined, 200)).data;
}

export async function workspaceRuns(server: ServerHandle, workspaceId: string): Promise<Run[]> {
  return (await apiCall<{ data: Run[] }>(server, 'GET', `/api/v2/workspaces/${workspaceId}/runs?page[size]=100`, undefined, 200)).data;
}

/** Waits for the run version control queued for `sha` (of any kind, or a pull request's when `pullRequest`). */
export async function waitForRunOfCommit(server: ServerHandle, workspaceId: string, sha: string, options: { pullRequest?: boolean; timeoutMs?: number } = {}): Promise<Run> {
  return waitUntil(
    `a run of commit ${sha.slice(0, 12)}`,
    async () =>
      (await workspaceRuns(server, workspaceId)).find(
        (run) => run.attributes['ingress-attributes']?.['commit-sha'] === sha && (options.pullRequest === undefined || run.attributes['ingress-attributes']['is-pull-request'] === options.pullRequest),
      ),
    async () => `triggers: ${JSON.stringify(await vcsTriggers(server, workspaceId))}\n${server.output().slice(-6000)}`,
    options.timeoutMs ?? 60_000,
  );
}

export interface RecordedWebhook {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface WebhookRecorder {
  readonly url: string;
  readonly received: RecordedWebhook[];
  /** Sends a request to the target as the forge did (or changed), and returns the answer. */
  replay(webhook: RecordedWebhook): Promise<{ status: number; body: string }>;
}

/**
 * Sits between a forge and the server's webhook endpoint: records each
 * delivery and passes it on unchanged, answering the forge with the server's
 * answer. Tests replay a real delivery (a redelivery) or a tampered copy.
 */
export async function startWebhookRecorder(t: TestHooks, target: string, host = '127.0.0.1'): Promise<WebhookRecorder> {
  const received: RecordedWebhook[] = [];
  const forward = (webhook: RecordedWebhook): Promise<{ status: number; body: string }> =>
    fetch(target, { method: 'POST', headers: webhook.headers, body: new Uint8Array(webhook.body) }).then(async (response) => ({ status: response.status, body: await response.text() }));
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers = Object.fromEntries(Object.entries(request.headers).filter(([name, value]) => typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name))) as Record<string, string>;
      const webhook = { headers, body: Buffer.concat(chunks) };
      received.push(webhook);
      forward(webhook).then(
        ({ status, body }) => response.writeHead(status, { 'content-type': 'application/json' }).end(body),
        (error: Error) => response.writeHead(502).end(error.message),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address() as { port: number };
  return { url: `http://${host}:${address.port}`, received, replay: forward };
}
