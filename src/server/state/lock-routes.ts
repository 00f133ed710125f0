// TFE's workspace lock actions (go-tfe Workspaces.Lock, Unlock, ForceUnlock),
// which the `tofu` CLI calls around every operation that writes state and for
// `tofu force-unlock`. Each answers with the workspace, as TFE does; the
// rules and the 409s go-tfe tells apart are in workspace-lock.ts.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { authenticateApi } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { present } from '../workspaces/presenter.ts';
import { getWorkspace, requireWorkspace } from '../workspaces/service.ts';
import { forceUnlockWorkspace, lockWorkspace, unlockWorkspace } from './service.ts';

const reason = z.string().max(4096).optional();
// TFE documents `{"reason": …}`; go-tfe sends its options as a JSON:API
// document (`data.attributes.reason`). Both are taken; the body may be absent.
const lockBody = z.object({ reason, data: z.object({ attributes: z.object({ reason }).optional() }).optional() });

export function workspaceLockRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/actions/lock', async (request) => {
    const principal = await authenticateApi(ctx, request);
    const workspace = await requireWorkspace(ctx, principal, request.params.id);
    const body = parseBody(lockBody, request.body ?? {});
    await lockWorkspace(ctx, principal, workspace, body.reason ?? body.data?.attributes?.reason);
    return { data: await present(ctx, await getWorkspace(ctx, principal, workspace.id)) };
  });

  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/actions/unlock', async (request) => {
    const principal = await authenticateApi(ctx, request);
    await unlockWorkspace(ctx, principal, await requireWorkspace(ctx, principal, request.params.id));
    return { data: await present(ctx, await getWorkspace(ctx, principal, request.params.id)) };
  });

  app.post<{ Params: { id: string } }>('/api/v2/workspaces/:id/actions/force-unlock', async (request) => {
    const principal = await authenticateApi(ctx, request);
    await forceUnlockWorkspace(ctx, await requireWorkspace(ctx, principal, request.params.id));
    return { data: await present(ctx, await getWorkspace(ctx, principal, request.params.id)) };
  });
}
