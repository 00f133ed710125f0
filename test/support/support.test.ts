// Checks the end-to-end harness itself: ports, the real PostgreSQL, how
// server and agent processes are launched, and that what it spawns dies.
// cluster.test.ts runs the real server and agent through it.
// node:test's test() returns a promise the runner tracks itself; until
// eslint.config.js allows it project-wide, say so here.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { callApi } from './json-api-client.ts';
import { agentEnvironment, cliCommand, generateAdminToken, serverEnvironment } from './cluster-environment.ts';
import { freePort } from './ports.ts';
import { createTestDatabase, databaseBackends, postgresUrl, testDatabasesOfThisProcess } from './postgres.ts';
import { readLog, spawnLogged } from './spawned-process.ts';

test('freePort returns a port that can be bound on 127.0.0.1', async () => {
  const port = await freePort();
  assert.ok(port > 1024 && port < 65536, `port ${port}`);
  const listener = net.createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, '127.0.0.1', resolve);
  });
  await new Promise((resolve) => listener.close(resolve));
});

test('postgresUrl refuses to skip PostgreSQL in CI', (t) => {
  const saved = { url: process.env.OUTPOST_TEST_POSTGRES_URL, ci: process.env.CI };
  t.after(() => {
    restoreEnv('OUTPOST_TEST_POSTGRES_URL', saved.url);
    restoreEnv('CI', saved.ci);
  });
  delete process.env.OUTPOST_TEST_POSTGRES_URL;
  process.env.CI = 'true';
  assert.throws(() => postgresUrl(), /OUTPOST_TEST_POSTGRES_URL is not set, and CI=true/);
  process.env.CI = 'false';
  assert.equal(postgresUrl(), undefined);
});

test('createTestDatabase makes an empty database and drops it', { skip: skipWithoutPostgres() }, async () => {
  const database = await createTestDatabase();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>('SELECT current_database() AS name');
    assert.equal(rows[0]?.name, database.name);
  } finally {
    await client.end();
  }
  // A connection left open (as a killed server leaves them) must not block the drop.
  const lingering = new pg.Client({ connectionString: database.url });
  await lingering.connect();
  lingering.on('error', () => undefined);
  await database.drop();
  assert.equal(await databaseExists(database.name), false);
  await lingering.end().catch(() => undefined);
  assert.deepEqual(databaseBackends(), ['sqlite', 'postgres']);
});

test('admin tokens have the server format', () => {
  const token = generateAdminToken();
  assert.match(token, /^opa_[A-Za-z0-9]{40}$/);
  assert.notEqual(generateAdminToken(), token);
});

test('processes run the CLI with the Node that runs the tests', () => {
  const { command, args } = cliCommand(['agent', 'run']);
  assert.equal(command, process.execPath);
  assert.match(args[0] ?? '', /[/\\]src[/\\]cli[/\\]main\.ts$/);
  assert.deepEqual(args.slice(1), ['agent', 'run']);
});

test('server and agent environments set the settings and drop inherited OUTPOST_* ones', () => {
  const inherited = { PATH: '/bin', OUTPOST_DATABASE_URL: 'postgres://leak', NODE_TEST_CONTEXT: 'child' };
  const server = serverEnvironment({
    dataDir: '/d',
    port: 1234,
    adminToken: 'opa_x',
    extra: { OUTPOST_LOG_LEVEL: 'debug', OUTPOST_SWEEP_INTERVAL: '2s' },
    inherited,
  });
  assert.deepEqual(server, {
    PATH: '/bin',
    OUTPOST_DATA_DIR: '/d',
    OUTPOST_LISTEN: '127.0.0.1:1234',
    OUTPOST_BOOTSTRAP_TOKEN: 'opa_x',
    OUTPOST_LOG_FORMAT: 'json',
    OUTPOST_SWEEP_INTERVAL: '2s',
    OUTPOST_LOG_LEVEL: 'debug',
  });
  const withPostgres = serverEnvironment({ dataDir: '/d', port: 1, adminToken: 'a', databaseUrl: 'postgres://db', inherited });
  assert.equal(withPostgres.OUTPOST_DATABASE_URL, 'postgres://db');

  const agent = agentEnvironment({
    serverUrl: 'http://127.0.0.1:1234',
    token: 'pool-token',
    name: 'a1',
    dataDir: '/a',
    enginePath: '/bin/tofu',
    extra: { OUTPOST_AGENT_DRIVER: 'local' },
    inherited,
  });
  assert.deepEqual(agent, {
    PATH: '/bin',
    OUTPOST_URL: 'http://127.0.0.1:1234',
    OUTPOST_AGENT_TOKEN: 'pool-token',
    OUTPOST_AGENT_NAME: 'a1',
    OUTPOST_AGENT_DATA_DIR: '/a',
    OUTPOST_AGENT_LOG_FORMAT: 'json',
    OUTPOST_AGENT_ENGINE_PATH: '/bin/tofu',
    OUTPOST_AGENT_ENGINE_BUILD: 'off',
    OUTPOST_AGENT_DRIVER: 'local',
  });
});

test('a server with TLS gets the certificate files, and its agents trust the CA for Node and for the engine', () => {
  const server = serverEnvironment({ dataDir: '/d', port: 1, adminToken: 'a', tls: { certFile: '/t/server.pem', keyFile: '/t/server.key' }, inherited: {} });
  assert.equal(server.OUTPOST_TLS_CERT, '/t/server.pem');
  assert.equal(server.OUTPOST_TLS_KEY, '/t/server.key');
  const plain = serverEnvironment({ dataDir: '/d', port: 1, adminToken: 'a', inherited: {} });
  assert.ok(!('OUTPOST_TLS_CERT' in plain) && !('OUTPOST_TLS_KEY' in plain));

  const agent = agentEnvironment({ serverUrl: 'https://127.0.0.1:1', token: 't', name: 'a', dataDir: '/a', enginePath: '/bin/tofu', caFile: '/t/ca.pem', inherited: {} });
  assert.equal(agent.NODE_EXTRA_CA_CERTS, '/t/ca.pem');
  assert.equal(agent.SSL_CERT_FILE, '/t/ca.pem');
});

test('spawned processes log to a file, stop gracefully, and are SIGKILLed when they ignore SIGTERM', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-support-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const logFile = path.join(dir, 'out.log');
  // Markers are built at run time: the log's first line repeats the command.
  const script = `process.on('SIGTERM', () => { console.log('termi' + 'nating'); process.exit(3); }); console.log('rea' + 'dy'); setInterval(() => {}, 1000);`;
  const graceful = spawnLogged({ command: process.execPath, args: ['-e', script], env: {}, cwd: dir, logFile });
  t.after(() => graceful.killGroup());
  await t.waitFor(() => assert.match(readLog(logFile), /^ready$/m), { timeout: 10_000 });
  assert.equal(await graceful.stop(), 3);
  assert.match(readLog(logFile), /^terminating$/m);

  const stubborn = spawnLogged({
    command: process.execPath,
    args: ['-e', `process.on('SIGTERM', () => {}); console.log('u' + 'p'); setInterval(() => {}, 1000);`],
    env: {},
    cwd: dir,
    logFile,
  });
  t.after(() => stubborn.killGroup());
  await t.waitFor(() => assert.match(readLog(logFile), /^up$/m), { timeout: 10_000 });
  assert.equal(await stubborn.stop('SIGTERM', 300), null);
  assert.match(readLog(logFile), /after SIGTERM: SIGKILL/);
});

test('killGroup also kills what the process started', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-support-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const logFile = path.join(dir, 'out.log');
  const grandchild = `setInterval(() => {}, 1000)`;
  const parent = `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: 'ignore' }); console.log('grandchild ' + c.pid); setInterval(() => {}, 1000);`;
  const spawned = spawnLogged({ command: process.execPath, args: ['-e', parent], env: {}, cwd: dir, logFile });
  t.after(() => spawned.killGroup());
  let grandchildPid = 0;
  await t.waitFor(
    () => {
      const match = /grandchild (\d+)/.exec(readLog(logFile));
      assert.ok(match);
      grandchildPid = Number(match[1]);
    },
    { timeout: 10_000 },
  );
  assert.equal(await spawned.kill(), null);
  assert.equal(isAlive(grandchildPid), true, 'kill() is a crash of the process alone');
  await spawned.killGroup();
  await t.waitFor(() => assert.equal(isAlive(grandchildPid), false), { timeout: 5_000 });
});

test('callApi sends the admin token and JSON:API content type, and parses JSON answers', async (t) => {
  const seen: Array<{ method: string; headers: IncomingMessage['headers']; body: string }> = [];
  const http = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      seen.push({ method: request.method ?? '', headers: request.headers, body });
      response.writeHead(201, { 'content-type': 'application/vnd.api+json' });
      response.end(JSON.stringify({ data: { id: 'x' } }));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => http.close(resolve)));
  const address = http.address();
  assert.ok(address !== null && typeof address === 'object');
  const baseUrl = `http://127.0.0.1:${address.port}`;

  const created = await callApi<{ data: { id: string } }>(baseUrl, 'opa_admin', 'POST', '/api/v2/x', { data: {} });
  assert.equal(created.status, 201);
  assert.equal(created.body.data.id, 'x');
  assert.equal(seen[0]?.headers.authorization, 'Bearer opa_admin');
  assert.equal(seen[0]?.headers['content-type'], 'application/vnd.api+json');
  assert.equal(seen[0]?.body, '{"data":{}}');

  await callApi(baseUrl, 'opa_admin', 'DELETE', '/api/v2/x', undefined, { token: null });
  assert.equal(seen[1]?.method, 'DELETE');
  assert.equal(seen[1]?.headers.authorization, undefined);
  assert.equal(seen[1]?.headers['content-type'], undefined, 'no body, no content type');
});

function skipWithoutPostgres(): string | false {
  return postgresUrl() === undefined ? 'OUTPOST_TEST_POSTGRES_URL is not set' : false;
}

async function databaseExists(name: string): Promise<boolean> {
  return (await testDatabasesOfThisProcess()).includes(name);
}

// A killed orphan may linger as a zombie until init reaps it; that is dead.
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
