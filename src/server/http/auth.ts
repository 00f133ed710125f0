// Authentication: one function per kind of caller. A token's prefix says its
// kind; the stored SHA-256 finds it; revoked and expired tokens answer 401
// with a code that tells the caller which, so an agent can stop cleanly.
import type { FastifyRequest } from 'fastify';
import type { Selectable } from 'kysely';
import { OutpostError } from '../../protocol/errors.ts';
import { finalJobStatuses } from '../../protocol/statuses.ts';
import { findAgentBySession } from '../agents/repo.ts';
import type { ServerContext } from '../context.ts';
import type { AgentsTable, JobsTable } from '../db/schema.ts';
import { hashToken, tokenKindOf, type TokenKind } from '../ids.ts';

/** The token from `Authorization: Bearer …`, or the password of Basic auth (the engine's http backend uses Basic). */
export function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim();
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : undefined;
  }
  return undefined;
}

function requireKind(request: FastifyRequest, kind: TokenKind, what: string): string {
  const token = presentedToken(request);
  if (!token) throw new OutpostError('unauthorized', `this endpoint needs ${what} in the Authorization header`);
  if (tokenKindOf(token) !== kind) throw new OutpostError('token_invalid', `this endpoint needs ${what}`);
  return token;
}

export interface ApiPrincipal {
  tokenId: string;
  organizationId: string;
}

export async function authenticateApi(ctx: ServerContext, request: FastifyRequest): Promise<ApiPrincipal> {
  const token = requireKind(request, 'api', 'an API token (opa_…)');
  const row = await ctx.db
    .selectFrom('api_tokens')
    .select(['id', 'organization_id', 'revoked_at', 'last_used_at'])
    .where('token_hash', '=', hashToken(token))
    .executeTakeFirst();
  if (!row) throw new OutpostError('token_invalid', 'the API token is not valid');
  if (row.revoked_at !== null) throw new OutpostError('token_revoked', 'the API token has been revoked');
  await touch(ctx, 'api_tokens', row.id, row.last_used_at);
  return { tokenId: row.id, organizationId: row.organization_id };
}

export async function authenticateAgent(ctx: ServerContext, request: FastifyRequest): Promise<Selectable<AgentsTable>> {
  const token = requireKind(request, 'session', 'an agent session token (ops_…)');
  const found = await findAgentBySession(ctx.db, hashToken(token));
  if (!found) throw new OutpostError('token_invalid', 'the agent session is not valid; register again');
  if (found.agent.deregistered_at !== null) throw new OutpostError('token_revoked', 'the agent was deregistered');
  if (!found.poolTokenValid) throw new OutpostError('token_revoked', 'the pool token this agent registered with has been revoked');
  return found.agent;
}

export async function authenticateJob(ctx: ServerContext, request: FastifyRequest): Promise<Selectable<JobsTable>> {
  const token = requireKind(request, 'job', 'a job token (opj_…)');
  const job = await ctx.db.selectFrom('jobs').selectAll().where('job_token_hash', '=', hashToken(token)).executeTakeFirst();
  if (!job) throw new OutpostError('token_invalid', 'the job token is not valid');
  // A job token lives exactly as long as its job: once the job is final
  // (or re-queued to another agent) the token is dead.
  if (finalJobStatuses.includes(job.status) || job.status === 'queued') {
    throw new OutpostError('token_revoked', 'the job this token belongs to is no longer running');
  }
  return job;
}

/** Records last use, at most once a minute per token, to spare write traffic. */
export async function touch(
  ctx: ServerContext,
  table: 'api_tokens' | 'pool_tokens',
  id: string,
  lastUsedAt: number | null,
): Promise<void> {
  const now = ctx.now();
  if (lastUsedAt !== null && now - lastUsedAt < 60_000) return;
  await ctx.db.updateTable(table).set({ last_used_at: now }).where('id', '=', id).execute();
}
