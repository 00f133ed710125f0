// GET /api/v2/organizations[/:org]
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import type { Organization } from '../../protocol/api-resources.ts';
import { iso } from '../http/json-api.ts';
import type { OrganizationRow } from './repo.ts';
import { listOrganizations, requireOrganization } from './service.ts';

function present(row: OrganizationRow): Organization {
  return { id: row.name, type: 'organizations', attributes: { name: row.name, 'created-at': iso(row.created_at) } };
}

export function organizationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/v2/organizations', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: (await listOrganizations(ctx, principal)).map(present) };
  });

  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org', async (request) => {
    const principal = await authenticateApi(ctx, request);
    return { data: present(await requireOrganization(ctx, principal, request.params.org)) };
  });
}
