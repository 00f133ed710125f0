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
  type PollResponse,
  type RegisterResponse,
} from '../../protocol/agent-api.ts';
import type { ServerContext } from '../context.ts';
import { authenticateAgent, presentedPoolToken } from '../http/auth.ts';
import { parseBody } from '../http/json-api.ts';
import { adoptJob } from '../jobs/adoption.ts';
import { finishJob, reportJobLost, startJob } from '../jobs/service.ts';
import { appendLog } from '../logs/service.ts';
import type { Topic } from '../notifier.ts';
import { acceptPoolToken } from '../pools/service.ts';
import { TurnGate } from '../turn-gate.ts';
import { beginPoll, deregisterAgent, heartbeat, lookForWork, registerAgent } from './service.ts';

const logQuery = z.object({ lease_id: z.string().min(1), offset: z.coerce.number().int().min(0) });

/**
 * Pieces of gated work admitted at once, per gate: SQLite runs one at a time
 * anyway (its queries block the event loop); PostgreSQL gets a few, which
 * leaves most of the connection pool (20) to heartbeats.
 */
const gateConcurrency = { sqlite: 1, postgres: 4 } as const;

export function agentProtocolRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Heartbeats are never gated: they must not wait behind a burst (turn-gate.ts).
  // Polls and registrations (which come in bursts when many agents start or
  // ask for work together) go through one gate; job start / finish / lost,
  // which follow every claim, through another, so finishing work never
  // waits behind new claims.
  const pollGate = new TurnGate(gateConcurrency[ctx.dialect]);
  const jobGate = new TurnGate(gateConcurrency[ctx.dialect]);

  app.post(agentPaths.register, (request, reply) => pollGate.run(async () => {
    const poolToken = await acceptPoolToken(ctx, presentedPoolToken(request));
    const input = parseBody(registerRequest, request.body);
    const { agentId, poolId, poolKind, session } = await registerAgent(ctx, poolToken, input);
    const response: RegisterResponse = {
      agent_id: agentId,
      pool_id: poolId,
      session_token: session,
      heartbeat_interval_ms: ctx.config.heartbeatInterval,
      lease_timeout_ms: ctx.config.leaseTimeout,
      poll_timeout_ms: ctx.config.pollTimeout,
      pool_kind: poolKind,
    };
    return reply.status(201).send(response);
  }));

  app.post(agentPaths.deregister, async (request, reply) => {
    await deregisterAgent(ctx, await authenticateAgent(ctx, request));
    return reply.status(204).send();
  });

  app.post(agentPaths.poll, async (request, reply): Promise<PollResponse | undefined> => {
    // Jobs claimed for this agent before this moment were answered to an earlier poll.
    const began = ctx.now();
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
          await beginPoll(ctx, agent, input.running, began);
        }
        return { agent, answer: gone.signal.aborted ? ('gone' as const) : await lookForWork(ctx, agent, { freeSlots: opened.input.free_slots, onlyJob: opened.input.job_id }, gone.signal) };
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
    return heartbeat(ctx, agent, parseBody(heartbeatRequest, request.body));
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
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      return { size: await appendLog(ctx, agent.id, request.params.id, query.lease_id, query.offset, body) };
    },
  );

  app.post<{ Params: { id: string } }>('/api/agent/v1/jobs/:id/lost', (request, reply) => jobGate.run(async () => {
    const agent = await authenticateAgent(ctx, request);
    const { lease_id } = parseBody(leaseBody, request.body);
    await reportJobLost(ctx, agent, request.params.id, lease_id);
    return reply.status(204).send();
  }));

  app.post<{ Params: { id: string } }>('/api/agent/v1/jobs/:id/adopt', (request) => jobGate.run(async () => {
    const agent = await authenticateAgent(ctx, request);
    const { lease_id } = parseBody(leaseBody, request.body);
    return adoptJob(ctx, agent, request.params.id, lease_id);
  }));

  app.post<{ Params: { id: string } }>('/api/agent/v1/jobs/:id/finish', (request, reply) => jobGate.run(async () => {
    const agent = await authenticateAgent(ctx, request);
    const input = parseBody(jobFinishRequest, request.body);
    await finishJob(ctx, agent.id, request.params.id, input);
    return reply.status(204).send();
  }));
}
