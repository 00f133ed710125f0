// Runs the real `outpost server` and `outpost agent run` through the harness
// (cluster.ts), on every configured database backend: the smallest proof that
// end-to-end tests built on it start, reach, restart and clean up the real
// processes.
// node:test's test() returns a promise the runner tracks itself; until
// eslint.config.js allows it project-wide, say so here.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startAgent, startServer } from './cluster.ts';
import { databaseBackends, testDatabasesOfThisProcess } from './postgres.ts';

interface Resource<A> {
  data: { id: string; attributes: A };
}

for (const backend of databaseBackends()) {
  test(`a server and an agent start, answer and restart (${backend})`, async (t) => {
    const server = await startServer({ backend, t });
    const organizations = await server.api('GET', '/api/v2/organizations');
    assert.equal(organizations.status, 200, JSON.stringify(organizations.body));
    const refused = await server.api('GET', '/api/v2/organizations', undefined, { token: 'opa_wrong' });
    assert.equal(refused.status, 401);

    const pool = await server.api<Resource<{ name: string }>>('POST', '/api/v2/organizations/default/agent-pools', {
      data: { type: 'agent-pools', attributes: { name: 'harness' } },
    });
    assert.equal(pool.status, 201, JSON.stringify(pool.body));
    const poolToken = await server.api<Resource<{ token: string }>>(
      'POST',
      `/api/v2/agent-pools/${pool.body.data.id}/authentication-tokens`,
      { data: { type: 'authentication-tokens', attributes: { description: 'harness' } } },
    );
    assert.equal(poolToken.status, 201, JSON.stringify(poolToken.body));

    const agent = await startAgent(server, { token: poolToken.body.data.attributes.token, t });
    const agentsPath = `/api/v2/agent-pools/${pool.body.data.id}/agents`;
    await t.waitFor(
      async () => {
        const agents = await server.api<{ data: Array<{ attributes: { name: string } }> }>('GET', agentsPath);
        assert.deepEqual(
          agents.body.data.map((a) => a.attributes.name),
          [agent.name],
        );
      },
      { timeout: 15_000, interval: 100 },
    );

    // Same port, data dir and database: what was created survives.
    await server.restart();
    const afterRestart = await server.api<Resource<{ name: string }>>('GET', `/api/v2/agent-pools/${pool.body.data.id}`);
    assert.equal(afterRestart.status, 200);
    assert.equal(afterRestart.body.data.attributes.name, 'harness');

    assert.equal(await agent.stop(), 0, agent.output());
    assert.equal(await server.stop(), 0, server.output());
    await server.cleanup();
    assert.equal(existsSync(server.dataDir), false);
    if (server.database) assert.deepEqual(await testDatabasesOfThisProcess(), []);
  });

  test(`startServer fails with the server's output and leaves nothing behind (${backend})`, async (t) => {
    // A private TMPDIR lets us see every temp dir the harness made.
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'outpost-harness-'));
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    t.after(async () => {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
      await rm(tmp, { recursive: true, force: true });
    });
    const databasesBefore = await testDatabasesOfThisProcess();
    await assert.rejects(
      startServer({ backend, env: { OUTPOST_LISTEN: 'not-an-address' } }),
      /server exited \(code \d+\) before answering GET \/healthz:\n[^]*OUTPOST_LISTEN/,
    );
    assert.deepEqual(await readdir(tmp), []);
    assert.deepEqual(await testDatabasesOfThisProcess(), databasesBefore);
  });
}
