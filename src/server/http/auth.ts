// Authentication: one function per kind of caller. A token's prefix says its
// kind, and a token of the wrong kind is refused here, before any lookup;
// the domain services find the token by its stored SHA-256 and answer 401
// with a code that tells the caller whether it is unknown or revoked, so an
// agent can stop cleanly.
import type { FastifyRequest } from 'fastify';
import { OutpostError } from '../../protocol/errors.ts';
import type { AgentRow } from '../agents/repo.ts';
import { authenticateSession } from '../agents/service.ts';
import type { ServerContext } from '../context.ts';
import { tokenKindOf, type TokenKind } from '../ids.ts';
import { authenticateJobToken, type JobScope } from '../jobs/service.ts';
import { authenticateApiToken, type ApiPrincipal } from '../organizations/service.ts';

/** The token from `Authorization: Bearer …`, or the password of Basic auth (the engine's http backend uses Basic). */
function presentedToken(request: FastifyRequest): string | undefined {
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

export async function authenticateApi(ctx: ServerContext, request: FastifyRequest): Promise<ApiPrincipal> {
  return authenticateApiToken(ctx, requireKind(request, 'api', 'an API token (opa_…)'));
}

export async function authenticateAgent(ctx: ServerContext, request: FastifyRequest): Promise<AgentRow> {
  return authenticateSession(ctx, requireKind(request, 'session', 'an agent session token (ops_…)'));
}

/** The job a job token belongs to, with its run and workspace (all a job token reaches). */
export async function authenticateJob(ctx: ServerContext, request: FastifyRequest): Promise<JobScope> {
  return authenticateJobToken(ctx, requireKind(request, 'job', 'a job token (opj_…)'));
}

/** The pool token of a registration, checked for its kind only: the agents service looks it up. */
export function presentedPoolToken(request: FastifyRequest): string {
  const token = presentedToken(request);
  if (!token) throw new OutpostError('unauthorized', 'register with a pool token in the Authorization header');
  if (tokenKindOf(token) !== 'pool') throw new OutpostError('token_invalid', 'registration needs a pool token (opp_…)');
  return token;
}
