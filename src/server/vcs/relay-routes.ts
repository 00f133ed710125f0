// The VCS relay of the agent protocol (docs/vcs.md): a VCS agent long-polls
// for the tasks of the providers reached through its pool, uploads a fetched
// commit's archive, reports each task's result, and forwards the webhooks
// forges inside its network sent to it. All over the agent's own outbound
// connection, with its session token.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../protocol/errors.ts';
import { forwardedHeadersHeader, vcsPaths, vcsPollRequest, vcsTaskResult, type VcsPollResponse, type VcsTaskAssignment } from '../../protocol/vcs-api.ts';
import type { AgentRow } from '../agents/repo.ts';
import type { ServerContext } from '../context.ts';
import { authenticateAgent } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { bodyBytes, rawBodyRoutes } from '../http/raw-body.ts';
import { acceptWebhook, handleTaskResult } from './ingress.ts';
import { requireVcsPool } from './service.ts';
import { assignmentOf, commitArchiveKey, findRunningTask, payloadOf, takeDueTasks } from './tasks.ts';

async function vcsAgent(ctx: ServerContext, agent: AgentRow): Promise<AgentRow> {
  await requireVcsPool(ctx, agent.pool_id);
  return agent;
}

function forwardedHeaders(value: string | string[] | undefined): Record<string, string> {
  if (typeof value !== 'string') throw new OutpostError('invalid_request', `a forwarded webhook carries its headers in ${forwardedHeadersHeader} (base64 of a JSON object)`);
  try {
    const parsed = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === 'string').map(([k, v]) => [k.toLowerCase(), v as string]));
  } catch {
    throw new OutpostError('invalid_request', `${forwardedHeadersHeader} is not base64 of a JSON object`);
  }
}

export function vcsRelayRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post(vcsPaths.poll, async (request, reply): Promise<VcsPollResponse | undefined> => {
    const gone = new AbortController();
    reply.raw.on('close', () => gone.abort());
    const agent = await vcsAgent(ctx, await authenticateAgent(ctx, request));
    const input = parseBody(vcsPollRequest, request.body ?? {});
    const deadline = ctx.now() + Math.min(input.wait_ms ?? ctx.config.pollTimeout, ctx.config.pollTimeout);
    for (;;) {
      // Re-authenticated at each look: a token revoked while the poll waited ends it with 401.
      await authenticateAgent(ctx, request);
      const tasks: VcsTaskAssignment[] = [];
      for (const task of await takeDueTasks(ctx, agent.pool_id, agent.id, input.max_tasks)) {
        const assignment = await assignmentOf(ctx, task);
        if (assignment) tasks.push(assignment);
      }
      if (tasks.length > 0) {
        ctx.logger.debug({ agent: agent.id, tasks: tasks.map((task) => `${task.kind}:${task.task_id}`) }, 'VCS tasks handed to an agent');
        return { tasks };
      }
      const remaining = deadline - ctx.now();
      if (remaining <= 0 || gone.signal.aborted) return gone.signal.aborted ? undefined : { tasks: [] };
      // Also woken when a lock of a task taken by a dead agent may have expired.
      const outcome = await ctx.notifier.wait([`vcs-pool:${agent.pool_id}`, `agent:${agent.id}`], Math.min(remaining, ctx.config.vcsInterval * 5), gone.signal);
      if (outcome === 'aborted') return undefined;
    }
  });

  app.post<{ Params: { id: string } }>('/api/agent/v1/vcs/tasks/:id/result', async (request, reply) => {
    const agent = await vcsAgent(ctx, await authenticateAgent(ctx, request));
    const result = parseBody(vcsTaskResult, request.body);
    const task = await findRunningTask(ctx, request.params.id, agent.id);
    if (!task) throw new OutpostError('lease_stale', `task ${request.params.id} is not held by this agent (it ended, or its lock expired and another took it)`);
    await handleTaskResult(ctx, task, result);
    return reply.status(204).send();
  });

  rawBodyRoutes(app, (scope) => {
    scope.put<{ Params: { id: string } }>('/api/agent/v1/vcs/tasks/:id/archive', { bodyLimit: ctx.config.maxUploadMb * 1024 * 1024 }, async (request, reply) => {
      const agent = await vcsAgent(ctx, await authenticateAgent(ctx, request));
      const task = await findRunningTask(ctx, request.params.id, agent.id);
      if (!task) throw new OutpostError('lease_stale', `task ${request.params.id} is not held by this agent (it ended, or its lock expired and another took it)`);
      const payload = payloadOf(task);
      if (payload.kind !== 'fetch') throw new OutpostError('conflict', `task ${task.id} is a ${payload.kind} task; only fetches upload an archive`);
      const archive = bodyBytes(request.body);
      if (archive[0] !== 0x1f || archive[1] !== 0x8b) throw new OutpostError('archive_invalid', 'the upload is not a gzip-compressed tar archive');
      await ctx.blobs.put(commitArchiveKey(task.provider_id, payload.repository, payload.sha, payload.submodules), archive);
      return reply.status(204).send();
    });

    scope.post<{ Params: { id: string } }>('/api/agent/v1/vcs/providers/:id/webhook', { bodyLimit: ctx.config.vcsWebhookMaxKb * 1024 }, async (request) => {
      const agent = await vcsAgent(ctx, await authenticateAgent(ctx, request));
      const headers = forwardedHeaders(request.headers[forwardedHeadersHeader]);
      return { outcome: await acceptWebhook(ctx, request.params.id, { headers, body: bodyBytes(request.body) }, agent.pool_id) };
    });
  });
}
