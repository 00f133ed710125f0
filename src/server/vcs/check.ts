// "Can Outpost use this repository?", asked before linking a workspace:
// the provider's credentials are tried both ways they will be used (git,
// and the forge's API), by whoever reaches the provider — the server, or a
// VCS agent of its pool — and the caller waits for the answer.
import { setTimeout as sleep } from 'node:timers/promises';
import { isErrorCode, OutpostError } from '../../protocol/errors.ts';
import type { VcsTaskResult } from '../../protocol/vcs-api.ts';
import { validateRepositoryName } from '../../vcs/providers.ts';
import type { ServerContext } from '../context.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import * as repo from './repo.ts';
import { requireProvider } from './service.ts';
import { queueTask } from './tasks.ts';

/** How long the caller waits for the provider's answer. */
const checkTimeoutMs = 30_000;

export type CheckResult = Extract<VcsTaskResult, { outcome: 'checked' }>;

export async function checkRepository(ctx: ServerContext, principal: ApiPrincipal, providerId: string, repository: string): Promise<CheckResult> {
  const provider = await requireProvider(ctx, principal, providerId);
  const problem = validateRepositoryName(provider.kind, repository);
  if (problem) throw new OutpostError('validation_failed', `repository: ${problem}`);
  if (provider.pool_id && (await repo.countConnectedAgents(ctx.db, provider.pool_id)) === 0) {
    throw new OutpostError('unavailable', `provider ${provider.name} is reached through pool ${(await repo.poolName(ctx.db, provider.pool_id)) ?? provider.pool_id}, and none of its VCS agents is connected`);
  }
  const taskId = await queueTask(ctx, provider, { kind: 'check', repository });
  const deadline = ctx.now() + checkTimeoutMs;
  while (taskId !== undefined && ctx.now() < deadline) {
    const task = await repo.findTask(ctx.db, taskId);
    if (task?.status === 'done' && task.result) return JSON.parse(task.result) as CheckResult;
    if (task?.status === 'failed') {
      const [code, ...rest] = (task.error ?? 'vcs_api_failed: the check failed').split(': ');
      throw new OutpostError(code && isErrorCode(code) ? code : 'vcs_api_failed', rest.join(': ') || 'the check failed');
    }
    await sleep(200);
  }
  throw new OutpostError('unavailable', `provider ${provider.name} did not answer within ${checkTimeoutMs / 1000} s`);
}
