// Start-up bootstrap: the `default` organization and the first admin token.
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { hashToken, newId, newToken } from '../ids.ts';
import { countApiTokens, findOrganization, insertApiToken, insertOrganizationIfMissing } from './repo.ts';

export const defaultOrganization = 'default';

/**
 * Creates the default organization and, when no API token exists yet, the
 * admin token. Returns the new token when it was generated here (the caller
 * prints it once); a token supplied through OUTPOST_BOOTSTRAP_TOKEN is not
 * echoed back.
 */
export async function bootstrap(ctx: ServerContext): Promise<{ generatedAdminToken?: string }> {
  await insertOrganizationIfMissing(ctx.db, { id: defaultOrganization, name: defaultOrganization, created_at: ctx.now() });
  if ((await countApiTokens(ctx.db)) > 0) return {};
  const token = ctx.config.bootstrapToken ?? newToken('api');
  try {
    await insertApiToken(ctx.db, {
      id: newId('at'),
      organization_id: defaultOrganization,
      description: 'admin token created at first start',
      token_hash: hashToken(token),
      created_at: ctx.now(),
      last_used_at: null,
      revoked_at: null,
    });
  } catch (error) {
    // Another replica bootstrapped at the same moment: its token stands.
    if ((await countApiTokens(ctx.db)) > 0) return {};
    throw error;
  }
  return ctx.config.bootstrapToken ? {} : { generatedAdminToken: token };
}

export async function requireOrganization(ctx: ServerContext, name: string): Promise<string> {
  const org = await findOrganization(ctx.db, name);
  if (!org) throw new OutpostError('not_found', `organization ${name} not found`);
  return org.id;
}

/** Creates an API token for the default organization; returns the secret (shown once). */
export async function issueApiToken(ctx: ServerContext, description: string): Promise<string> {
  const token = newToken('api');
  await insertApiToken(ctx.db, {
    id: newId('at'),
    organization_id: defaultOrganization,
    description,
    token_hash: hashToken(token),
    created_at: ctx.now(),
    last_used_at: null,
    revoked_at: null,
  });
  return token;
}
