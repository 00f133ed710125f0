// Who may call what, against the real server (and, for the job token, a real
// agent running the real OpenTofu):
// - the user API (/api/v2) takes API tokens only: no header, a malformed
//   header, an unknown token and every other kind of token are 401, each
//   with its own code;
// - the agent protocol refuses unknown and revoked pool tokens, and the
//   sessions of an agent whose pool token was revoked (driven with fetch, as
//   an agent would);
// - a job token reaches its own job and nothing else, dies with its job, and
//   no token ever shows up in a log file or an API response; a sensitive
//   variable's value never comes back from the user API.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import type { ServerHandle } from '../support/cluster.ts';
import { startAgent, startServer } from '../support/cluster.ts';
import { databaseBackends } from '../support/postgres.ts';
import { logTail } from '../support/spawned-process.ts';
import { createPool, createRun, createVariable, createWorkspace, currentStateVersion, downloadState, runLogs, uploadConfiguration, type Pool, type Resource } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { suiteHooks } from '../support/test-cluster.ts';
import { processLogs, runDiagnostics, waitForAgents, waitForRunStatus, waitUntil } from '../support/waits.ts';
import { assertError, basicAuth, HttpRecorder, placesContaining, unknownToken } from '../support/security-checks.ts';

interface Registered {
  agent_id: string;
  pool_id: string;
  session_token: string;
}

const registerBody = (name: string) => ({ name, version: '0.1.0', driver: 'local', concurrency: 1, single: false });
const idlePoll = { free_slots: 0, running: [], wait_ms: 0 };
const idleHeartbeat = { status: 'idle', running: [] };

for (const backend of databaseBackends()) {
  describe(`tokens on the user API and the agent protocol (${backend})`, () => {
    const hooks = suiteHooks();
    let server: ServerHandle;
    let http: HttpRecorder;
    const serverLog = () => `--- server log (${backend})\n${logTail(server.logFile, 40)}`;

    const newPoolToken = async (poolId: string): Promise<{ id: string; token: string }> => {
      const created = await http.expect<{ data: Resource<{ token: string }> }>('POST', `/api/v2/agent-pools/${poolId}/authentication-tokens`, 201, {
        json: { data: { type: 'authentication-tokens', attributes: { description: 'token-scope e2e' } } },
      });
      return { id: created.data.id, token: created.data.attributes.token };
    };

    const register = (token: string | null, name = `agent-${randomBytes(3).toString('hex')}`) =>
      http.request('POST', '/api/agent/v1/register', { token, json: registerBody(name), contentType: 'application/json' });
    const poll = (session: string) => http.request('POST', '/api/agent/v1/poll', { token: session, json: idlePoll, contentType: 'application/json' });
    const heartbeat = (session: string) =>
      http.request('POST', '/api/agent/v1/heartbeat', { token: session, json: idleHeartbeat, contentType: 'application/json' });

    before(async () => {
      server = await startServer({ backend, t: hooks });
      http = new HttpRecorder(server.url, server.adminToken);
    });

    test('the user API answers 401 unauthorized without usable credentials and token_invalid for any token that is not an API token', async () => {
      const pool = (await http.expect<{ data: Resource<unknown> }>('POST', '/api/v2/organizations/default/agent-pools', 201, {
        json: { data: { type: 'agent-pools', attributes: { name: `api-tokens-${randomBytes(3).toString('hex')}` } } },
      })).data;
      const poolToken = await newPoolToken(pool.id);
      const registered = await register(poolToken.token);
      assert.equal(registered.status, 201, registered.text);
      const session = (registered.body as Registered).session_token;

      const reads = ['/api/v2/organizations', `/api/v2/agent-pools/${pool.id}`, '/api/v2/organizations/default/workspaces'];
      for (const urlPath of reads) {
        assertError(await http.get(urlPath, { token: null }), 401, 'unauthorized', { detail: 'Authorization', context: serverLog });
        assertError(await http.get(urlPath, { token: unknownToken('opa_') }), 401, 'token_invalid', { context: serverLog });
        assertError(await http.get(urlPath, { token: poolToken.token }), 401, 'token_invalid', { detail: 'opa_', context: serverLog });
        assertError(await http.get(urlPath, { token: session }), 401, 'token_invalid', { detail: 'opa_', context: serverLog });
        assertError(await http.get(urlPath, { token: unknownToken('opj_') }), 401, 'token_invalid', { context: serverLog });
        assertError(await http.get(urlPath, { token: 'not-a-token-at-all' }), 401, 'token_invalid', { context: serverLog });
        // Malformed Authorization headers: nothing usable was presented.
        for (const authorization of ['Basic garbage', 'Basic !!!not base64!!!', 'Basic ', 'Bearer', 'Bearer ', 'Token abc', 'opa_']) {
          assertError(await http.get(urlPath, { authorization }), 401, 'unauthorized', { context: () => `Authorization: ${authorization}\n${serverLog()}` });
        }
        // Well-formed Basic credentials are read like a bearer token, and refused the same way.
        assertError(await http.get(urlPath, { authorization: basicAuth('x', unknownToken('opa_')) }), 401, 'token_invalid');
        assertError(await http.get(urlPath, { authorization: basicAuth('job', poolToken.token) }), 401, 'token_invalid');
      }

      // Writes are refused before anything happens.
      const name = `refused-${randomBytes(3).toString('hex')}`;
      const create = { data: { type: 'workspaces', attributes: { name } } };
      assertError(await http.request('POST', '/api/v2/organizations/default/workspaces', { token: null, json: create }), 401, 'unauthorized');
      assertError(await http.request('POST', '/api/v2/organizations/default/workspaces', { token: session, json: create }), 401, 'token_invalid');
      assertError(await http.request('POST', '/api/v2/organizations/default/workspaces', { token: poolToken.token, json: create }), 401, 'token_invalid');
      assertError(await http.request('DELETE', `/api/v2/authentication-tokens/${poolToken.id}`, { token: session }), 401, 'token_invalid');
      const workspaces = await http.expect<{ data: Resource<{ name: string }>[] }>('GET', '/api/v2/organizations/default/workspaces', 200);
      assert.ok(!workspaces.data.some((ws) => ws.attributes.name === name), 'a refused request created a workspace');
      const tokens = await http.expect<{ data: Resource<{ 'revoked-at': string | null }>[] }>('GET', `/api/v2/agent-pools/${pool.id}/authentication-tokens`, 200);
      assert.equal(tokens.data.find((row) => row.id === poolToken.id)?.attributes['revoked-at'], null, 'a refused request revoked the token');

      // And the agent protocol takes no API token.
      assertError(await register(server.adminToken), 401, 'token_invalid', { detail: 'opp_' });
      assertError(await poll(server.adminToken), 401, 'token_invalid', { detail: 'ops_' });
      assertError(await http.get('/api/agent/v1/job', { token: server.adminToken }), 401, 'token_invalid', { detail: 'opj_' });
      assertError(await http.get('/api/agent/v1/job', { token: null }), 401, 'unauthorized');
    });

    test('register refuses unknown and revoked pool tokens; sessions of a revoked pool token are token_revoked', async () => {
      const pool = (await http.expect<{ data: Resource<unknown> }>('POST', '/api/v2/organizations/default/agent-pools', 201, {
        json: { data: { type: 'agent-pools', attributes: { name: `protocol-${randomBytes(3).toString('hex')}` } } },
      })).data;
      assertError(await register(null), 401, 'unauthorized', { context: serverLog });
      assertError(await register(unknownToken('opp_')), 401, 'token_invalid', { context: serverLog });
      assertError(await poll(unknownToken('ops_')), 401, 'token_invalid', { context: serverLog });
      assertError(await heartbeat(unknownToken('ops_')), 401, 'token_invalid', { context: serverLog });

      const revoked = await newPoolToken(pool.id);
      const kept = await newPoolToken(pool.id);
      const first = await register(revoked.token);
      assert.equal(first.status, 201, first.text);
      const doomed = first.body as Registered;
      assert.equal(doomed.pool_id, pool.id);
      const second = await register(kept.token);
      assert.equal(second.status, 201, second.text);
      const survivor = second.body as Registered;

      // Both sessions work before the revocation.
      for (const session of [doomed.session_token, survivor.session_token]) {
        const polled = await poll(session);
        assert.equal(polled.status, 200, polled.text);
        assert.deepEqual(polled.body, { jobs: [], signals: [] });
        const beat = await heartbeat(session);
        assert.equal(beat.status, 200, beat.text);
      }

      // An agent always has a poll open: one waiting while its token is revoked ends with 401, not 200.
      const openPoll = http.request('POST', '/api/agent/v1/poll', {
        token: doomed.session_token,
        json: { free_slots: 1, running: [], wait_ms: 2_000 },
        contentType: 'application/json',
      });
      await http.expect('DELETE', `/api/v2/authentication-tokens/${revoked.id}`, 204);
      assertError(await openPoll, 401, 'token_revoked', { context: serverLog });
      const tokens = await http.expect<{ data: Resource<{ 'revoked-at': string | null }>[] }>('GET', `/api/v2/agent-pools/${pool.id}/authentication-tokens`, 200);
      assert.ok(tokens.data.find((row) => row.id === revoked.id)?.attributes['revoked-at'], 'the token is shown revoked');
      assert.equal(tokens.data.find((row) => row.id === kept.id)?.attributes['revoked-at'], null, 'only that token was revoked');

      assertError(await register(revoked.token), 401, 'token_revoked', { context: serverLog });
      assertError(await poll(doomed.session_token), 401, 'token_revoked', { context: serverLog });
      assertError(await heartbeat(doomed.session_token), 401, 'token_revoked', { context: serverLog });
      const deregister = await http.request('POST', '/api/agent/v1/deregister', { token: doomed.session_token });
      assertError(deregister, 401, 'token_revoked');

      // The other token and its session are untouched.
      assert.equal((await poll(survivor.session_token)).status, 200);
      assert.equal((await heartbeat(survivor.session_token)).status, 200);
      assert.equal((await register(kept.token)).status, 201);

      // A deregistered agent's session is revoked as well.
      const bye = await http.request('POST', '/api/agent/v1/deregister', { token: survivor.session_token });
      assert.equal(bye.status, 204, bye.text);
      assertError(await poll(survivor.session_token), 401, 'token_revoked');
      assertError(await heartbeat(survivor.session_token), 401, 'token_revoked');

      // No response carried a pool or session token except the ones that hand them out.
      for (const response of http.responses) {
        if (response.path.endsWith('/authentication-tokens') && response.method === 'POST') continue;
        if (response.path === '/api/agent/v1/register') continue;
        for (const secret of [revoked.token, kept.token]) {
          assert.ok(!response.text.includes(secret), `${response.method} ${response.path} answered with a pool token`);
        }
      }
      const serverOutput = server.output();
      for (const secret of [revoked.token, kept.token, doomed.session_token, survivor.session_token]) {
        assert.ok(!serverOutput.includes(secret), `the server log contains a token:\n${serverLog()}`);
      }
    });
  });
}

// ---------------------------------------------------------------------------
// The job token, captured from inside a real job

// The engine gets the job token as TF_HTTP_PASSWORD (its http state backend
// authenticates with it), so anything the configuration runs can read it:
// exactly what a hostile configuration would do. The provisioner writes it
// to a directory named by a workspace env variable, then keeps the job
// running so the token can be tried while it is live. (Reading
// /proc/<pid>/environ of the job process, or polling as a fake agent, would
// also yield a token, but only this path shows what the configuration, the
// untrusted part, can get hold of through the real agent and engine.)
const captureConfiguration = `
resource "terraform_data" "capture" {
  provisioner "local-exec" {
    command = "printf '%s' \\"$TF_HTTP_PASSWORD\\" > \\"$CAPTURE_DIR/job-token.tmp\\" && mv \\"$CAPTURE_DIR/job-token.tmp\\" \\"$CAPTURE_DIR/job-token\\" && echo \\"the secret is $SECRET_PASSWORD\\" && exec sleep 120"
  }
}
`;

const otherConfiguration = (marker: string) => `
resource "terraform_data" "other" {
  input = "${marker}"
}
output "marker" {
  value = terraform_data.other.output
}
`;

/** Files below `root` that contain `secret` (large binaries skipped). */
async function filesContaining(root: string, secret: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    try {
      if ((await stat(file)).size > 16 * 1024 * 1024) continue; // the engine binary
      if ((await readFile(file)).includes(secret)) found.push(file);
    } catch {
      // removed meanwhile (the job's files come and go)
    }
  }
  return found;
}

// A real run per backend costs seconds; the token's lifetime is checked on
// each, since it is the database that says whether a job is still running.
for (const backend of databaseBackends()) {
  test(`a job token reaches only its own job, dies with it, and no token leaks (${backend})`, async (t) => {
    const responses: { label: string; text: string }[] = [];
    const server = await startServer({ backend, t });
    // Every API response this test receives is kept for the leak check.
    const recording = Object.create(server) as ServerHandle;
    Object.defineProperty(recording, 'api', {
      value: async (...args: Parameters<ServerHandle['api']>) => {
        const response = await server.api(...args);
        responses.push({ label: `${args[0]} ${args[1]}`, text: typeof response.body === 'string' ? response.body : JSON.stringify(response.body) });
        return response;
      },
    });
    const http = new HttpRecorder(server.url, server.adminToken);

    const pool: Pool = await createPool(recording);
    const agent = await startAgent(server, { token: pool.token, t });
    await waitForAgents(recording, pool.id, 1, [agent]);
    const diagnostics = (runId: string) => runDiagnostics(server, runId, [agent]);

    // Another workspace with state: what the job token must not reach.
    const other = await createWorkspace(recording, { poolId: pool.id });
    const marker = `other-workspace-state-${randomBytes(6).toString('hex')}`;
    const otherRun = await createRun(recording, other.id, await uploadConfiguration(recording, other.id, { 'main.tf': otherConfiguration(marker) }));
    await waitForRunStatus(recording, otherRun.id, ['applied'], 60_000, [agent]);
    const otherState = await currentStateVersion(recording, other.id);
    assert.ok(otherState, 'the other workspace has a state version');
    assert.ok(JSON.stringify(await downloadState(recording, otherState.id)).includes(marker));

    // The workspace whose job gives its token away.
    const workspace = await createWorkspace(recording, { poolId: pool.id });
    const captureDir = await tempDir(t, 'outpost-e2e-capture-');
    const secretValue = `s3cret-${randomBytes(8).toString('hex')}`;
    await createVariable(recording, workspace.id, { key: 'CAPTURE_DIR', value: captureDir, category: 'env' });
    await createVariable(recording, workspace.id, { key: 'SECRET_PASSWORD', value: secretValue, category: 'env', sensitive: true });

    const variables = await http.expect<{ data: Resource<{ key: string; value: string | null; sensitive: boolean }>[] }>(
      'GET',
      `/api/v2/workspaces/${workspace.id}/vars`,
      200,
    );
    const sensitive = variables.data.find((v) => v.attributes.key === 'SECRET_PASSWORD');
    assert.equal(sensitive?.attributes.sensitive, true);
    assert.equal(sensitive?.attributes.value, null, 'GET vars returned a sensitive value');
    assert.equal(variables.data.find((v) => v.attributes.key === 'CAPTURE_DIR')?.attributes.value, captureDir);

    const run = await createRun(recording, workspace.id, await uploadConfiguration(recording, workspace.id, { 'main.tf': captureConfiguration }));
    const tokenFile = path.join(captureDir, 'job-token');
    await waitUntil(
      'the provisioner to write the job token',
      async () => (existsSync(tokenFile) ? true : undefined),
      () => diagnostics(run.id),
      60_000,
    );
    const jobToken = (await readFile(tokenFile, 'utf8')).trim();
    assert.match(jobToken, /^opj_[A-Za-z0-9]{40}$/, 'TF_HTTP_PASSWORD holds a job token');
    const live = await waitForRunStatus(recording, run.id, ['applying'], 10_000, [agent]);
    assert.equal(live.attributes.status, 'applying');

    // While the job runs: its own spec, as a bearer token and as the engine sends it.
    const spec = await http.expect<{ run_id: string; kind: string; workspace: { id: string }; variables: { key: string; value: string }[] }>(
      'GET',
      '/api/agent/v1/job',
      200,
      { token: jobToken },
    );
    assert.equal(spec.run_id, run.id);
    assert.equal(spec.kind, 'apply');
    assert.equal(spec.workspace.id, workspace.id);
    // (the one reader of sensitive values, by design: docs/protocol.md)
    assert.equal(spec.variables.find((v) => v.key === 'SECRET_PASSWORD')?.value, secretValue);
    await http.expect('GET', '/api/agent/v1/job', 200, { authorization: basicAuth('job', jobToken) });
    // Its state endpoint is its own workspace's state, never the other one's.
    const ownState = await http.get('/api/agent/v1/job/state', { authorization: basicAuth('job', jobToken) });
    assert.ok([200, 204].includes(ownState.status), `GET job/state: HTTP ${ownState.status} ${ownState.text}`);
    assert.ok(!ownState.text.includes(marker), 'the job token read the other workspace\'s state');

    // Nothing under /api/v2: the job token is not an API token.
    const context = () => processLogs([server, agent]);
    const userApi: [string, string, unknown?][] = [
      ['GET', `/api/v2/workspaces/${other.id}/current-state-version`],
      ['GET', `/api/v2/workspaces/${other.id}/state-versions`],
      ['GET', `/api/v2/state-versions/${otherState.id}`],
      ['GET', `/api/v2/state-versions/${otherState.id}/download`],
      ['GET', `/api/v2/state-versions/${otherState.id}/outputs`],
      ['GET', `/api/v2/workspaces/${workspace.id}/current-state-version`],
      ['GET', `/api/v2/workspaces/${workspace.id}/vars`],
      ['GET', `/api/v2/runs/${run.id}`],
      ['GET', '/api/v2/organizations'],
      ['GET', `/api/v2/agent-pools/${pool.id}/authentication-tokens`],
      ['POST', `/api/v2/runs/${otherRun.id}/actions/apply`],
      ['POST', `/api/v2/agent-pools/${pool.id}/authentication-tokens`, { data: { type: 'authentication-tokens' } }],
    ];
    for (const [method, urlPath, json] of userApi) {
      for (const auth of [{ token: jobToken }, { authorization: basicAuth('job', jobToken) }]) {
        const response = await http.request(method, urlPath, { ...auth, ...(json === undefined ? {} : { json }) });
        assertError(response, 401, 'token_invalid', { context });
      }
    }
    // Nor the agent's own endpoints: it is not a pool or session token.
    assertError(await http.request('POST', '/api/agent/v1/register', { token: jobToken, json: registerBody('job-token') }), 401, 'token_invalid');
    assertError(await http.request('POST', '/api/agent/v1/poll', { token: jobToken, json: idlePoll }), 401, 'token_invalid');
    assertError(await http.request('POST', '/api/agent/v1/heartbeat', { token: jobToken, json: idleHeartbeat }), 401, 'token_invalid');

    // The token is never written to a file (the engine gets it in its environment).
    const onDisk = [...(await filesContaining(path.dirname(agent.dataDir), jobToken)), ...(await filesContaining(server.dataDir, jobToken))].filter(
      (file) => !file.startsWith(captureDir),
    );
    assert.deepEqual(onDisk, [], 'the job token was written to a file');

    // End the job: the token dies with it.
    await http.expect('POST', `/api/v2/runs/${run.id}/actions/cancel`, 202);
    const ended = await waitForRunStatus(recording, run.id, ['canceled'], 60_000, [agent]);
    assert.equal(ended.attributes.status, 'canceled', await diagnostics(run.id));
    for (const auth of [{ token: jobToken }, { authorization: basicAuth('job', jobToken) }]) {
      assertError(await http.get('/api/agent/v1/job', auth), 401, 'token_revoked', { context });
      assertError(await http.get('/api/agent/v1/job/state', auth), 401, 'token_revoked', { context });
      assertError(await http.get('/api/agent/v1/job/configuration', auth), 401, 'token_revoked', { context });
      assertError(await http.request('POST', '/api/agent/v1/job/result', { ...auth, json: { outcome: 'succeeded' }, contentType: 'application/json' }), 401, 'token_revoked', { context });
    }
    // A token that never existed is still merely invalid.
    assertError(await http.get('/api/agent/v1/job', { token: unknownToken('opj_') }), 401, 'token_invalid');

    // The sensitive value is masked in the run log (the provisioner echoed it).
    const logs = await runLogs(recording, ended);
    assert.match(logs.apply, /the secret is \*\*\*/, `the apply log does not show the masked echo:\n${logs.apply}`);
    await runLogs(recording, (await waitForRunStatus(recording, otherRun.id, ['applied'])));

    // No token in any log file or API response; no sensitive value in any user API response.
    await agent.stop();
    const places: Record<string, string> = { 'server log': server.output(), 'agent log': agent.output() };
    for (const [index, response] of [...responses, ...http.responses.map((r) => ({ label: `${r.method} ${r.path}`, text: r.text }))].entries()) {
      places[`response #${index} to ${response.label}`] = response.text;
    }
    const poolTokenShownAt = (label: string) => /^POST \/api\/v2\/agent-pools\/[^/]+\/authentication-tokens$/.test(label.replace(/^response #\d+ to /, ''));
    const jobLeaks = placesContaining(jobToken, places);
    assert.deepEqual(jobLeaks, [], `the job token appears in: ${jobLeaks.join(', ')}\n${context()}`);
    // The pool token is shown once, in the answer that creates it, and nowhere else.
    const poolLeaks = placesContaining(pool.token, places).filter((label) => !poolTokenShownAt(label));
    assert.deepEqual(poolLeaks, [], `the pool token appears in: ${poolLeaks.join(', ')}\n${context()}`);
    assert.ok(placesContaining(pool.token, places).some(poolTokenShownAt), 'test bug: the token creation response was not recorded');
    const secretLeaks = placesContaining(secretValue, places).filter((label) => !label.endsWith('GET /api/agent/v1/job'));
    assert.deepEqual(secretLeaks, [], `the sensitive value appears in: ${secretLeaks.join(', ')}\n${context()}`);
  });
}
