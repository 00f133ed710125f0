// The agent protocol (/api/agent/v1; docs/protocol.md): register, long-poll
// for jobs and signals, heartbeat, and per-job start / logs / finish.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  agentPaths,
  heartbeatRequest,
  jobFinishRequest,
  leaseBody,
  pollRequest,
  registerRequest,
  type HeartbeatResponse,
  type PollRequest,
  type JobSignal,
  type PollResponse,
  type RegisterResponse,
} from '../../protocol/agent-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import { poolWakeLimit, type Topic } from '../notifier.ts';
import { authenticateAgent, presentedToken, touch } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { hashToken, newId, newToken, tokenKindOf } from '../ids.ts';
import * as jobsRepo from '../jobs/repo.ts';
import { claimJobs, finishJob, reportJobLost, returnClaims, startJob } from '../jobs/service.ts';
import { appendLog } from '../logs/service.ts';
import { findPoolTokenByHash } from '../pools/repo.ts';
import { TurnGate } from '../turn-gate.ts';
import * as repo from './repo.ts';

const logQuery = z.object({ lease_id: z.string().min(1), offset: z.coerce.number().int().min(0) });

function toSignals(rows: jobsRepo.JobRow[]): JobSignal[] {
  return rows.flatMap((row) => (row.signal ? [{ job_id: row.id, action: row.signal }] : []));
}

/**
 * One look of a poll: undelivered signals, and up to `freeSlots` claimed jobs.
 * 'gone' when the caller hung up while we claimed (the claims went back).
 */
async function lookForWork(ctx: ServerContext, agent: repo.AgentRow, freeSlots: number, gone: AbortSignal): Promise<PollResponse | 'nothing' | 'gone'> {
  const signalled = await jobsRepo.signalsForAgent(ctx.db, agent.id, true);
  await jobsRepo.markSignalsDelivered(ctx.db, signalled.map((row) => row.id));
  // Do not hand out work to a caller that has already hung up.
  const jobs = freeSlots > 0 && !gone.aborted ? await claimJobs(ctx, agent, freeSlots) : [];
  // The caller hung up while we claimed: the answer cannot reach it, so
  // the claims go back to the queue now instead of when the lease lapses.
  if (jobs.length > 0 && gone.aborted) {
    await returnClaims(ctx, jobs, agent.pool_id);
    return 'gone';
  }
  if (jobs.length === 0 && signalled.length === 0) return 'nothing';
  if (jobs.length > 0) ctx.logger.info({ agent: agent.id, jobs: jobs.map((j) => j.job_id) }, 'jobs claimed');
  // Every slot filled: more may be queued, so the next few waiting agents look (the wave).
  if (jobs.length > 0 && jobs.length === freeSlots) ctx.notifier.notify(`pool:${agent.pool_id}`, poolWakeLimit);
  return { jobs, signals: toSignals(signalled) };
}

/**
 * Pieces of gated work admitted at once, per gate: SQLite runs one at a time
 * anyway (its queries block the event loop); PostgreSQL gets a few, which
 * leaves most of the connection pool (20) to heartbeats.
 */
const gateConcurrency = { sqlite: 1, postgres: 4 } as const;

/**
 * The agent's row records when it was last seen, to this precision: a poll
 * or heartbeat within this time of the last write does not write again
 * (unless the status changes). Silence is judged over `lease_timeout_ms`
 * (30 s by default), and leases are extended by every heartbeat regardless.
 */
export const lastSeenPrecisionMs = 5_000;

const seenLongAgo = (ctx: ServerContext, agent: repo.AgentRow) => ctx.now() - agent.last_seen_at >= lastSeenPrecisionMs;

export function agentProtocolRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Heartbeats are never gated: they must not wait behind a burst (turn-gate.ts).
  // Polls and registrations (which come in bursts when many agents start or
  // ask for work together) go through one gate; job start / finish / lost,
  // which follow every claim, through another, so finishing work never
  // waits behind new claims.
  const pollGate = new TurnGate(gateConcurrency[ctx.dialect]);
  const jobGate = new TurnGate(gateConcurrency[ctx.dialect]);

  app.post(agentPaths.register, (request, reply) => pollGate.run(async () => {
    const token = presentedToken(request);
    if (!token) throw new OutpostError('unauthorized', 'register with a pool token in the Authorization header');
    if (tokenKindOf(token) !== 'pool') throw new OutpostError('token_invalid', 'registration needs a pool token (opp_…)');
    const poolToken = await findPoolTokenByHash(ctx.db, hashToken(token));
    if (!poolToken) throw new OutpostError('token_invalid', 'the pool token is not valid');
    if (poolToken.revoked_at !== null) throw new OutpostError('token_revoked', 'the pool token has been revoked');
    const input = parseBody(registerRequest, request.body);
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
    await touch(ctx, 'pool_tokens', poolToken.id, null);
    ctx.logger.info({ agent: agentId, name: input.name, pool: poolToken.pool_id, version: input.version }, 'agent registered');
    const response: RegisterResponse = {
      agent_id: agentId,
      pool_id: poolToken.pool_id,
      session_token: session,
      heartbeat_interval_ms: ctx.config.heartbeatInterval,
      lease_timeout_ms: ctx.config.leaseTimeout,
      poll_timeout_ms: ctx.config.pollTimeout,
    };
    return reply.status(201).send(response);
  }));

  app.post(agentPaths.deregister, async (request, reply) => {
    const agent = await authenticateAgent(ctx, request);
    await repo.updateAgent(ctx.db, agent.id, { status: 'offline', deregistered_at: ctx.now() });
    ctx.logger.info({ agent: agent.id, name: agent.name }, 'agent deregistered');
    return reply.status(204).send();
  });

  app.post(agentPaths.poll, async (request, reply): Promise<PollResponse | undefined> => {
    const gone = new AbortController();
    reply.raw.on('close', () => gone.abort());
    let opened: { input: PollRequest; deadline: number } | undefined;
    for (;;) {
      // Every look at the tables goes through the gate, so a burst of polls
      // does not hold up heartbeats. The agent is authenticated at each look:
      // a token revoked while the poll waited ends it with 401.
      const look = await pollGate.run(async () => {
        const agent = await authenticateAgent(ctx, request);
        if (!opened) {
          const input = parseBody(pollRequest, request.body);
          opened = { input, deadline: ctx.now() + Math.min(input.wait_ms ?? ctx.config.pollTimeout, ctx.config.pollTimeout) };
          // Seen at most once per poll; heartbeats keep it fresh while the poll waits.
          if (agent.status === 'offline') await repo.updateAgent(ctx.db, agent.id, { last_seen_at: ctx.now(), status: 'idle' });
          else if (seenLongAgo(ctx, agent)) await repo.updateAgent(ctx.db, agent.id, { last_seen_at: ctx.now() });
        }
        return { agent, answer: gone.signal.aborted ? ('gone' as const) : await lookForWork(ctx, agent, opened.input.free_slots, gone.signal) };
      });
      const { agent, answer } = look;
      if (answer === 'gone') return undefined;
      if (answer !== 'nothing') return answer;
      const remaining = opened!.deadline - ctx.now();
      if (remaining <= 0) return { jobs: [], signals: [] };
      // An agent with no free slot waits for its own signals only: new work in
      // its pool would wake it for nothing (with many busy agents, a herd).
      const topics: Topic[] = opened!.input.free_slots > 0 ? [`pool:${agent.pool_id}`, `agent:${agent.id}`] : [`agent:${agent.id}`];
      const outcome = await ctx.notifier.wait(topics, remaining, gone.signal);
      if (outcome === 'aborted') return undefined;
    }
  });

  app.post(agentPaths.heartbeat, async (request): Promise<HeartbeatResponse> => {
    const agent = await authenticateAgent(ctx, request);
    const input = parseBody(heartbeatRequest, request.body);
    const now = ctx.now();
    if (agent.status !== input.status || seenLongAgo(ctx, agent)) await repo.updateAgent(ctx.db, agent.id, { last_seen_at: now, status: input.status });
    const current = await jobsRepo.extendLeases(ctx.db, agent.id, input.running, now + ctx.config.leaseTimeout);
    // Signals are only for the jobs listed: an idle agent's heartbeat need not look.
    const signalled = input.running.length > 0 ? await jobsRepo.signalsForAgent(ctx.db, agent.id, false) : [];
    const signals = toSignals(signalled).filter((s) => input.running.some((job) => job.job_id === s.job_id));
    return { signals, stale: input.running.filter((job) => !current.has(job.job_id)).map((job) => job.job_id) };
  });

  app.post<{ Params: { id: string } }>('/api/agent/v1/jobs/:id/start', (request, reply) => jobGate.run(async () => {
    const agent = await authenticateAgent(ctx, request);
    const { lease_id } = parseBody(leaseBody, request.body);
    await startJob(ctx, agent.id, request.params.id, lease_id);
    return reply.status(204).send();
  }));

  app.put<{ Params: { id: string }; Querystring: Record<string, string> }>(
    '/api/agent/v1/jobs/:id/logs',
    { bodyLimit: 8 * 1024 * 1024 },
    async (request) => {
      const agent = await authenticateAgent(ctx, request);
      const query = parseBody(logQuery, request.query);
      const job = await jobsRepo.findJob(ctx.db, request.params.id);
      if (!job || job.agent_id !== agent.id) throw new OutpostError('not_found', `job ${request.params.id} not found`);
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      return { size: await appendLog(ctx, job, query.lease_id, query.offset, body) };
    },
  );

  app.post<{ Params: { id: string } }>('/api/agent/v1/jobs/:id/lost', (request, reply) => jobGate.run(async () => {
    const agent = await authenticateAgent(ctx, request);
    const { lease_id } = parseBody(leaseBody, request.body);
    await reportJobLost(ctx, agent, request.params.id, lease_id);
    return reply.status(204).send();
  }));

  app.post<{ Params: { id: string } }>('/api/agent/v1/jobs/:id/finish', (request, reply) => jobGate.run(async () => {
    const agent = await authenticateAgent(ctx, request);
    const input = parseBody(jobFinishRequest, request.body);
    await finishJob(ctx, agent.id, request.params.id, input);
    return reply.status(204).send();
  }));
}
