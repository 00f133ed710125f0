// What the state API tests share: state files, the documents the `tofu`
// CLI (go-tfe) sends for them, and tokens of the same and of another
// organization.
import { createHash, randomBytes } from 'node:crypto';
import type { InProcessServer, Response } from '../in-process-server.test-support.ts';
import { hashToken, newId, newToken } from '../ids.ts';
import { insertApiToken, insertOrganizationIfMissing } from '../organizations/repo.ts';
import { issueApiToken } from '../organizations/service.ts';

/** go-tfe's content type for every JSON:API request. */
export const jsonApi = 'application/vnd.api+json';

export function md5(bytes: string | Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** A state file as the engine writes it. */
export function stateText(serial: number, lineage: string, outputs: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ version: 4, terraform_version: '1.10.0', serial, lineage, outputs, resources: [], check_results: null }, null, 2)}\n`;
}

/** The document StateVersions.Create sends for `state`, with attributes overridden. */
export function createDocument(state: string, attributes: Record<string, unknown> = {}, relationships?: unknown): unknown {
  const parsed = JSON.parse(state) as { serial: number; lineage: string };
  return {
    data: {
      type: 'state-versions',
      attributes: { serial: parsed.serial, lineage: parsed.lineage, md5: md5(state), state: Buffer.from(state).toString('base64'), force: false, ...attributes },
      ...(relationships ? { relationships } : {}),
    },
  };
}

export async function post(server: InProcessServer, url: string, json?: unknown, token?: string): Promise<Response> {
  return server.request('POST', url, { ...(token ? { token } : {}), ...(json === undefined ? {} : { json }), contentType: jsonApi });
}

export async function lock(server: InProcessServer, workspaceId: string, token?: string): Promise<Response> {
  return post(server, `/api/v2/workspaces/${workspaceId}/actions/lock`, { reason: 'Locked by OpenTofu' }, token);
}

/** Locks, creates the state version and unlocks, as the CLI does around a write; returns the create answer. */
export async function pushState(server: InProcessServer, workspaceId: string, state: string, attributes: Record<string, unknown> = {}): Promise<Response> {
  const locked = await lock(server, workspaceId);
  if (locked.status !== 200) throw new Error(`lock: HTTP ${locked.status} ${locked.text}`);
  const created = await post(server, `/api/v2/workspaces/${workspaceId}/state-versions`, createDocument(state, attributes));
  const unlocked = await post(server, `/api/v2/workspaces/${workspaceId}/actions/unlock`);
  if (unlocked.status !== 200) throw new Error(`unlock: HTTP ${unlocked.status} ${unlocked.text}`);
  return created;
}

/** Another API token of the default organization. */
export async function secondToken(server: InProcessServer): Promise<string> {
  return issueApiToken(server.ctx, 'a second user');
}

/** An API token of another organization. */
export async function foreignToken(server: InProcessServer): Promise<string> {
  const org = `other-${randomBytes(3).toString('hex')}`;
  await insertOrganizationIfMissing(server.ctx.db, { id: org, name: org, created_at: Date.now() });
  const token = newToken('api');
  await insertApiToken(server.ctx.db, { id: newId('at'), organization_id: org, description: 'a stranger', token_hash: hashToken(token), created_at: Date.now(), last_used_at: null, revoked_at: null });
  return token;
}

/** A GET without any token, as a client following a pre-signed URL (an absolute one, as the API gives it) sends it. */
export async function fetchSigned(server: InProcessServer, url: string, method: 'GET' | 'HEAD' | 'PUT' = 'GET', headers: Record<string, string> = {}) {
  const path = url.startsWith(server.ctx.publicUrl) ? url.slice(server.ctx.publicUrl.length) : url;
  const res = await server.app.inject({ method, url: path, headers });
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    json = undefined;
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are inspected ad hoc
  return { status: res.statusCode, text: res.body, json: json as any };
}
