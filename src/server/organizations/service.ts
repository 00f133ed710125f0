// Organizations and their API tokens: start-up bootstrap (the `default`
// organization and the first admin token), authenticating an API token, and
// the check every user request makes that it acts in its own organization.
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { hashToken, newId, newToken } from '../ids.ts';
import * as repo from './repo.ts';

export const defaultOrganization = 'default';

/** Who a user request acts as: an API token, in its organization. */
export interface ApiPrincipal {
  tokenId: string;
  organizationId: string;
}

/**
 * Creates the default organization and, when no API token exists yet, the
 * admin token. Returns the new token when it was generated here (the caller
 * prints it once); a token supplied through OUTPOST_BOOTSTRAP_TOKEN is not
 * echoed back.
 */
export async function bootstrap(ctx: ServerContext): Promise<{ generatedAdminToken?: string }> {
  await repo.insertOrganizationIfMissing(ctx.db, { id: defaultOrganization, name: defaultOrganization, created_at: ctx.now() });
  if ((await repo.countApiTokens(ctx.db)) > 0) return {};
  const token = ctx.config.bootstrapToken ?? newToken('api');
  try {
    await insertToken(ctx, token, 'admin token created at first start');
  } catch (error) {
    // Another replica bootstrapped at the same moment: its token stands.
    if ((await repo.countApiTokens(ctx.db)) > 0) return {};
    throw error;
  }
  return ctx.config.bootstrapToken ? {} : { generatedAdminToken: token };
}

/** Creates an API token for the default organization; returns the secret (shown once). */
export async function issueApiToken(ctx: ServerContext, description: string): Promise<string> {
  const token = newToken('api');
  await insertToken(ctx, token, description);
  return token;
}

async function insertToken(ctx: ServerContext, token: string, description: string): Promise<void> {
  await repo.insertApiToken(ctx.db, {
    id: newId('at'),
    organization_id: defaultOrganization,
    description,
    token_hash: hashToken(token),
    created_at: ctx.now(),
    last_used_at: null,
    revoked_at: null,
  });
}

/** A token's last use is recorded to this precision, to spare a write on every request. */
const lastUsedPrecisionMs = 60_000;

export async function authenticateApiToken(ctx: ServerContext, token: string): Promise<ApiPrincipal> {
  const row = await repo.findApiTokenByHash(ctx.db, hashToken(token));
  if (!row) throw new OutpostError('token_invalid', 'the API token is not valid');
  if (row.revoked_at !== null) throw new OutpostError('token_revoked', 'the API token has been revoked');
  const now = ctx.now();
  if (row.last_used_at === null || now - row.last_used_at >= lastUsedPrecisionMs) await repo.recordApiTokenUse(ctx.db, row.id, now);
  return { tokenId: row.id, organizationId: row.organization_id };
}

/** The organization named in a request, if it is the caller's; not_found otherwise (another organization is not shown to exist). */
export async function requireOrganization(ctx: ServerContext, principal: ApiPrincipal, name: string): Promise<repo.OrganizationRow> {
  const org = await repo.findOrganization(ctx.db, name);
  if (!org || org.id !== principal.organizationId) throw new OutpostError('not_found', `organization ${name} not found`);
  return org;
}

/** The organizations the caller may see: its own. */
export async function listOrganizations(ctx: ServerContext, principal: ApiPrincipal): Promise<repo.OrganizationRow[]> {
  return (await repo.listOrganizations(ctx.db)).filter((row) => row.id === principal.organizationId);
}
