import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { agentPaths } from '../../protocol/agent-api.ts';
import { queueRun, registerAgent, setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { findAgentBySession } from './repo.ts';
import { lastSeenPrecisionMs } from './service.ts';
import { hashToken } from '../ids.ts';

describe('agent protocol', () => {
  let server: InProcessServer;
  before(async () => {
    server = await startInProcessServer();
  });
  after(() => server.close());

  const agentOf = async (session: string) => (await findAgentBySession(server.ctx.db, hashToken(session)))!.agent;
  const heartbeat = (session: string, status: 'idle' | 'busy') => server.request('POST', agentPaths.heartbeat, { token: session, json: { status, running: [] } });

  it('a burst of polls claims each queued job exactly once and answers every poll', async () => {
    const { workspaceId, poolToken } = await setupWorkspace(server);
    const runs = await Promise.all([0, 1, 2, 3, 4].map(() => queueRun(server, workspaceId, { 'plan-only': true })));
    // Twenty agents of the pool, each with its one poll open.
    const sessions = await Promise.all(Array.from({ length: 20 }, () => registerAgent(server, poolToken)));
    const polls = await Promise.all(
      sessions.map((session) => server.request('POST', agentPaths.poll, { token: session, json: { free_slots: 1, running: [], wait_ms: 200 } })),
    );
    assert.deepEqual(new Set(polls.map((poll) => poll.status)), new Set([200]));
    const claimed = polls.flatMap((poll) => poll.json.jobs as { run_id: string }[]).map((job) => job.run_id);
    assert.deepEqual([...claimed].sort(), [...runs].sort());
  });

  it('writes when the agent was last seen at most once per precision interval, and at once when its status changes', async () => {
    const { session } = await setupWorkspace(server);
    const registered = await agentOf(session);
    assert.equal((await heartbeat(session, 'idle')).status, 200);
    assert.equal((await agentOf(session)).last_seen_at, registered.last_seen_at, 'seen just now: no write');
    assert.equal((await heartbeat(session, 'busy')).status, 200);
    assert.equal((await agentOf(session)).status, 'busy');
    const longAgo = Date.now() - lastSeenPrecisionMs - 1_000;
    await server.ctx.db.updateTable('agents').set({ last_seen_at: longAgo }).where('id', '=', registered.id).execute();
    await heartbeat(session, 'busy');
    assert.ok((await agentOf(session)).last_seen_at > longAgo + 1_000);
    // An agent the sweeper marked offline is idle again at its next poll.
    await server.ctx.db.updateTable('agents').set({ status: 'offline' }).where('id', '=', registered.id).execute();
    await server.request('POST', agentPaths.poll, { token: session, json: { free_slots: 0, running: [], wait_ms: 0 } });
    assert.equal((await agentOf(session)).status, 'idle');
  });

  for (const freeSlots of [1, 0]) it(`a waiting poll (${freeSlots} free slots) ends with 401 token_revoked when its pool token is revoked`, async () => {
    const { session } = await setupWorkspace(server);
    const agent = await agentOf(session);
    const poll = server.request('POST', agentPaths.poll, { token: session, json: { free_slots: freeSlots, running: [], wait_ms: 10_000 } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const tokens = await server.request('GET', `/api/v2/agent-pools/${agent.pool_id}/authentication-tokens`);
    assert.equal((await server.request('DELETE', `/api/v2/authentication-tokens/${tokens.json.data[0].id}`)).status, 204);
    const answer = await poll;
    assert.equal(answer.status, 401);
    assert.equal(answer.json.errors[0].code, 'token_revoked');
    assert.equal((await heartbeat(session, 'idle')).status, 401);
  });
});
