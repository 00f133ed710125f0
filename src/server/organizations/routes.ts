// GET /api/v2/organizations[/:org]
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { iso, type ResourceObject } from '../http/json-api.ts';
import { findOrganization, listOrganizations } from './repo.ts';

function present(row: { id: string; name: string; created_at: number }): ResourceObject {
  return { id: row.name, type: 'organizations', attributes: { name: row.name, 'created-at': iso(row.created_at) } };
}

export function organizationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/v2/organizations', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const rows = await listOrganizations(ctx.db);
    return { data: rows.filter((row) => row.id === principal.organizationId).map(present) };
  });

  app.get<{ Params: { org: string } }>('/api/v2/organizations/:org', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const row = await findOrganization(ctx.db, request.params.org);
    if (!row || row.id !== principal.organizationId) throw new OutpostError('not_found', `organization ${request.params.org} not found`);
    return { data: present(row) };
  });
}
