// GET /api/v2/organizations[/:org]
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import type { Organization } from '../../protocol/api-resources.ts';
import { iso, relation } from '../http/json-api.ts';
import { paginate } from '../http/pagination.ts';
import type { OrganizationRow } from './repo.ts';
import { listOrganizations, requireOrganization } from './service.ts';

function present(row: OrganizationRow): Organization {
  return {
    id: row.name,
    type: 'organizations',
    attributes: {
      name: row.name,
      'created-at': iso(row.created_at),
      // API tokens act for their whole organization (docs/api.md).
      permissions: { 'can-update': false, 'can-destroy': false, 'can-create-workspace': true, 'can-manage-agent-pools': true, 'can-manage-tags': true },
      'default-execution-mode': 'agent',
    },
    relationships: { 'entitlement-set': relation('entitlement-sets', entitlementSetId(row)) },
  };
}

const entitlementSetId = (row: OrganizationRow) => `org-${row.name}`;

/**
 * What the organization can do, as TFE's clients ask before using a feature:
 * the tofu CLI's cloud block needs `operations` (remote runs) and `state`,
 * and `agents`; features Outpost does not have are false, so clients do not
 * try them.
 */
function presentEntitlements(row: OrganizationRow) {
  return {
    id: entitlementSetId(row),
    type: 'entitlement-sets',
    attributes: {
      operations: true,
      'private-module-registry': false,
      sentinel: false,
      'run-tasks': false,
      // go-tfe's name for it; the tofu CLI's cloud block reads only `operations`.
      'state-storage': true,
      teams: false,
      'vcs-integrations': true,
      agents: true,
      'audit-logging': false,
      'cost-estimation': false,
      sso: false,
      'configuration-designer': false,
      'usage-reporting': false,
      'global-run-tasks': false,
      'module-tests-generation': false,
      'private-run-tasks': false,
      'private-policy-agents': false,
      'private-vcs': false,
      'redirect-registry': false,
    },
  };
}

export function organizationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/v2/organizations', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const page = paginate(ctx, request, await listOrganizations(ctx, principal));
    return { data: page.items.map(present), meta: page.meta, links: page.links };
  });

  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(await requireOrganization(ctx, principal, request.params.org)) };
  });

  // Who the token is (TFE: account/details): `tofu login` reads it to check
  // the token it was given. Outpost's callers are API tokens, not user
  // accounts, so the "user" is the token itself.
  app.get('/api/v2/account/details', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return {
      data: {
        id: principal.tokenId,
        type: 'users',
        attributes: { username: `token ${principal.tokenId}`, 'is-service-account': true, 'two-factor': { enabled: false, verified: false } },
        relationships: { organizations: { data: [{ type: 'organizations', id: principal.organizationId }] } },
      },
    };
  });

  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org/entitlement-set', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: presentEntitlements(await requireOrganization(ctx, principal, request.params.org)) };
  });
}
