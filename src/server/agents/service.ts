// Agents: registration with a pool token, the session that authenticates
// every later call, what one look of a long-poll finds, heartbeats, and
// agents as users see them. The jobs an agent claims and runs are the jobs
// service's.
import type { HeartbeatRequest, HeartbeatResponse, PollResponse, RegisterRequest, RunningJob } from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { hashToken, newId, newToken } from '../ids.ts';
import { claimJobs, handBackUnreceived, renewLeases, returnClaims, takeUndeliveredSignals, whyJobIsNotClaimable } from '../jobs/service.ts';
import { poolWakeLimit } from '../notifier.ts';
import type { PoolKind } from '../../protocol/statuses.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { findPool, type PoolTokenRow } from '../pools/repo.ts';
import { recordPoolTokenUse, requirePool } from '../pools/service.ts';
import * as repo from './repo.ts';

export type AgentView = repo.AgentRow & { running_jobs: number };

/**
 * The agent's row records when it was last seen, to this precision: a poll
 * or heartbeat within this time of the last write does not write again
 * (unless the status changes). Silence is judged over `lease_timeout_ms`
 * (30 s by default), and leases are extended by every heartbeat regardless.
 */
export const lastSeenPrecisionMs = 5_000;

const seenLongAgo = (ctx: ServerContext, agent: repo.AgentRow) => ctx.now() - agent.last_seen_at >= lastSeenPrecisionMs;

export async function listAgents(ctx: ServerContext, principal: ApiPrincipal, poolId: string): Promise<AgentView[]> {
  const pool = await requirePool(ctx, principal, poolId);
  return repo.listAgents(ctx.db, pool.id);
}

export async function requireAgent(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<AgentView> {
  const agent = await repo.findAgent(ctx.db, id);
  const pool = agent ? await findPool(ctx.db, agent.pool_id) : undefined;
  if (!agent || pool?.organization_id !== principal.organizationId) throw new OutpostError('not_found', `agent ${id} not found`);
  const running = (await repo.listAgents(ctx.db, agent.pool_id)).find((row) => row.id === agent.id)?.running_jobs ?? 0;
  return { ...agent, running_jobs: running };
}

/** Registers an agent with a pool token that stands (pools/service acceptPoolToken); returns its session token, shown once. */
export async function registerAgent(ctx: ServerContext, poolToken: PoolTokenRow, input: RegisterRequest): Promise<{ agentId: string; poolId: string; poolKind: PoolKind; session: string }> {
  const session = newToken('session');
  const now = ctx.now();
  const agentId = newId('agent');
  await repo.insertAgent(ctx.db, {
    id: agentId,
    pool_id: poolToken.pool_id,
    pool_token_id: poolToken.id,
    name: input.name,
    version: input.version,
    driver: input.driver,
    concurrency: input.concurrency,
    single: input.single ? 1 : 0,
    status: 'idle',
    session_token_hash: hashToken(session),
    registered_at: now,
    last_seen_at: now,
    deregistered_at: null,
  });
  await recordPoolTokenUse(ctx, poolToken);
  ctx.logger.info({ agent: agentId, name: input.name, pool: poolToken.pool_id, version: input.version }, 'agent registered');
  const pool = await findPool(ctx.db, poolToken.pool_id);
  return { agentId, poolId: poolToken.pool_id, poolKind: pool?.kind ?? 'runner', session };
}

/**
 * The agent leaves its pool. Its session dies with it, so a job still
 * leased to it (claimed, never started) can never start: it is queued again.
 */
export async function deregisterAgent(ctx: ServerContext, agent: repo.AgentRow): Promise<void> {
  const now = ctx.now();
  await repo.updateAgent(ctx.db, agent.id, { status: 'offline', deregistered_at: now });
  ctx.logger.info({ agent: agent.id, name: agent.name }, 'agent deregistered');
  await handBackUnreceived(ctx, agent.id, [], now + 1, 'its agent left the pool without starting it');
}

/** The agent a session token belongs to, while the agent is registered and the pool token it registered with stands. */
export async function authenticateSession(ctx: ServerContext, token: string): Promise<repo.AgentRow> {
  const found = await repo.findAgentBySession(ctx.db, hashToken(token));
  if (!found) throw new OutpostError('token_invalid', 'the agent session is not valid; register again');
  if (found.agent.deregistered_at !== null) throw new OutpostError('token_revoked', 'the agent was deregistered');
  if (!found.poolTokenValid) throw new OutpostError('token_revoked', 'the pool token this agent registered with has been revoked');
  return found.agent;
}

/**
 * A poll opened at `began`, listing the jobs the agent holds: the agent is
 * seen (at most once per poll; heartbeats keep it fresh while the poll
 * waits), and jobs claimed for it earlier that it does not list go back to
 * the queue (jobs/service handBackUnreceived).
 */
export async function beginPoll(ctx: ServerContext, agent: repo.AgentRow, held: readonly RunningJob[], began: number): Promise<void> {
  // An agent the sweeper marked offline is idle again.
  if (agent.status === 'offline') await repo.updateAgent(ctx.db, agent.id, { last_seen_at: ctx.now(), status: 'idle' });
  else if (seenLongAgo(ctx, agent)) await repo.updateAgent(ctx.db, agent.id, { last_seen_at: ctx.now() });
  await handBackUnreceived(ctx, agent.id, held, began);
}

/**
 * One look of a poll: undelivered signals, and up to `freeSlots` claimed jobs.
 * 'gone' when the caller hung up while we claimed (the claims went back).
 */
export async function lookForWork(ctx: ServerContext, agent: repo.AgentRow, wants: { freeSlots: number; onlyJob?: string | undefined }, gone: AbortSignal): Promise<PollResponse | 'nothing' | 'gone'> {
  const { freeSlots } = wants;
  const signals = await takeUndeliveredSignals(ctx, agent.id);
  // Do not hand out work to a caller that has already hung up.
  const jobs = freeSlots > 0 && !gone.aborted ? await claimJobs(ctx, agent, freeSlots, wants.onlyJob) : [];
  // The caller hung up while we claimed: the answer cannot reach it, so
  // the claims go back to the queue now instead of when the lease lapses.
  if (jobs.length > 0 && gone.aborted) {
    await returnClaims(ctx, jobs);
    return 'gone';
  }
  const unclaimable = jobs.length === 0 && freeSlots > 0 && wants.onlyJob !== undefined ? await whyJobIsNotClaimable(ctx, agent, wants.onlyJob) : undefined;
  if (unclaimable !== undefined) return { jobs, signals, job_gone: unclaimable };
  if (jobs.length === 0 && signals.length === 0) return 'nothing';
  if (jobs.length > 0) ctx.logger.info({ agent: agent.id, jobs: jobs.map((j) => j.job_id) }, 'jobs claimed');
  // Every slot filled: more may be queued, so the next few waiting agents look (the wave).
  if (jobs.length > 0 && jobs.length === freeSlots) ctx.notifier.notify(`pool:${agent.pool_id}`, poolWakeLimit);
  return { jobs, signals };
}

export async function heartbeat(ctx: ServerContext, agent: repo.AgentRow, input: HeartbeatRequest): Promise<HeartbeatResponse> {
  if (agent.status !== input.status || seenLongAgo(ctx, agent)) await repo.updateAgent(ctx.db, agent.id, { last_seen_at: ctx.now(), status: input.status });
  return renewLeases(ctx, agent.id, input.running);
}

/** Agents silent for a lease timeout become offline; returns how many did. */
export async function markSilentAgentsOffline(ctx: ServerContext): Promise<number> {
  return repo.markSilentAgentsOffline(ctx.db, ctx.now() - ctx.config.leaseTimeout);
}

/** Registered agents by pool and status, for /metrics. */
export async function countAgentsByPoolAndStatus(ctx: ServerContext): Promise<{ poolId: string; status: repo.AgentRow['status']; count: number }[]> {
  return repo.countAgentsByPoolAndStatus(ctx.db);
}
