// deploy/docker/compose.yaml brought up by Debian's docker-compose (1.29)
// through the documented one-shot path, scripts/compose-up.sh (which runs
// `docker-compose up -d` for the server, makes a pool and a pool token with
// the server's CLI, then `docker-compose up -d` for the agent), and the
// server and agent it starts apply a run: the test talks to the published
// port from the host with the admin token compose-up.sh keeps in its env
// file, as the docs say to.
//
// So that it never touches a user's stack, the test gives compose-up.sh its
// own compose project name, a free host port, its own env file instead of
// deploy/docker/.env and its own agent data dir (same path on the host and
// in the agent container, as compose.yaml mounts it). The one thing it adds
// to what users run is the engine: no release site is reachable here, so an
// override file (COMPOSE_FILE for compose-up.sh, -f for the test's own
// docker-compose calls) mounts the locally built OpenTofu read-only into the
// agent and points OUTPOST_AGENT_ENGINE_PATH at it. The agent mounts it into
// its job containers like any engine from its binary cache.
//
// `docker-compose down -v` runs when the test ends, pass or fail, and every
// assertion message carries `docker-compose logs`.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import type { ServerHandle } from '../support/cluster.ts';
import { callApi } from '../support/json-api-client.ts';
import { freePort } from '../support/ports.ts';
import { tofuBinary } from '../support/toolchain.ts';
import { apiCall, createRun, createWorkspace, listAgents, readLog, relatedId, uploadConfiguration, type Agent, type Resource } from '../support/api-calls.ts';
import { outputsFromApplyLog } from '../support/log-checks.ts';
import { waitForRunStatus, waitUntil } from '../support/waits.ts';
import { dockerDiagnostics, dockerUnavailable, jobLabels, removeContainersAfter, withDiagnostics, type CommandResult } from '../support/docker-cluster.ts';

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const composeFile = path.join(repoRoot, 'deploy/docker/compose.yaml');
const composeUp = path.join(repoRoot, 'scripts/compose-up.sh');

/** What compose.yaml starts, and the job image its agent uses by default. */
const composeImages = ['outpost/server:latest', 'outpost/agent:latest', 'outpost/runner:latest'];

/** The pool compose-up.sh creates by default. */
const composePool = 'docker';

/** Why this test cannot run here; in CI (CI=true) a missing daemon, image or docker-compose fails instead. */
function composeUnavailable(): string | undefined {
  const docker = dockerUnavailable(composeImages);
  if (docker !== undefined) return docker;
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore', timeout: 20_000 });
    return undefined;
  } catch (error) {
    const reason = `docker-compose (Debian's, 1.29) is not installed (${(error as Error).message.split('\n')[0]})`;
    if (process.env.CI === 'true') throw new Error(`CI must bring up deploy/docker/compose.yaml, but ${reason}`);
    return reason;
  }
}

const unavailable = composeUnavailable();

/**
 * The environment compose-up.sh and docker-compose get: the test's, without
 * settings of a user's own Outpost or compose stack (OUTPOST_*, SCALR_*,
 * COMPOSE_*), which would otherwise win over the test's env file.
 */
function cleanEnvironment(extra: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(OUTPOST|SCALR|COMPOSE)_/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

async function runCommand(command: string, args: readonly string[], env: Record<string, string>, timeoutMs: number): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, [...args], { cwd: repoRoot, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? failed.message };
  }
}

/** A ServerHandle for the compose stack's server: its API through the published port; its process belongs to docker-compose. */
function composeServer(url: string, adminToken: string, logFile: string): ServerHandle {
  const managedByCompose = (): never => {
    throw new Error('the server of the compose stack is managed by docker-compose');
  };
  return {
    url,
    adminToken,
    backend: 'sqlite',
    dataDir: '/var/lib/outpost (the outpost-data volume)',
    // A note only: failures carry `docker-compose logs` instead.
    logFile,
    database: undefined,
    get process(): ChildProcess {
      return managedByCompose();
    },
    output: () => '',
    stop: managedByCompose,
    kill: managedByCompose,
    restart: managedByCompose,
    cleanup: () => Promise.resolve(),
    api: (method, urlPath, body, options) => callApi(url, adminToken, method, urlPath, body, options),
  };
}

describe('docker-compose up -d with deploy/docker/compose.yaml', { skip: unavailable ?? false }, () => {
  test('scripts/compose-up.sh brings up a server and an agent that apply a run', async (t: TestContext) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-compose-'));
    // The agent runs as root and writes root-owned files in its data dir; the daemon must see it.
    const agentDataDir = path.join(dir, 'agent-data');
    await mkdir(agentDataDir);
    await chmod(dir, 0o755);
    await chmod(agentDataDir, 0o755);
    const envFile = path.join(dir, 'compose.env');
    const override = path.join(dir, 'engine.override.yaml');
    const project = `outpost-e2e-${randomBytes(5).toString('hex')}`;
    const port = await freePort();

    const tofu = tofuBinary();
    await writeFile(
      override,
      [
        '# Written by test/docker/compose.test.ts: the locally built OpenTofu (no release site is reachable).',
        'version: "3.8"',
        'services:',
        '  agent:',
        '    environment:',
        `      OUTPOST_AGENT_ENGINE_PATH: ${JSON.stringify(tofu)}`,
        '    volumes:',
        `      - ${JSON.stringify(`${tofu}:${tofu}:ro`)}`,
        '',
      ].join('\n'),
    );

    const env = cleanEnvironment({});
    const compose = (args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> =>
      runCommand('docker-compose', ['--project-name', project, '--file', composeFile, '--file', override, '--env-file', envFile, ...args], env, timeoutMs);
    const composeLogs = async (): Promise<string> => {
      const logs = await compose(['logs', '--no-color', '--tail', '80']);
      return `--- docker-compose logs (project ${project})\n${logs.stdout}${logs.stderr}`;
    };
    const describeAll = async (): Promise<string> => `${await composeLogs()}\n${await dockerDiagnostics(`${jobLabels.dataDir}=${agentDataDir}`)}`;

    // Hooks run in the order they are added: the stack (and its volume) goes
    // first, then any job container of its agent, then the temp dir.
    t.after(async () => {
      const down = await compose(['down', '-v', '--remove-orphans', '--timeout', '20'], 120_000);
      assert.equal(down.code, 0, `docker-compose down -v failed (exit ${down.code}):\n${down.stderr}${down.stdout}`);
    });
    removeContainersAfter(t, `${jobLabels.dataDir}=${agentDataDir}`);
    t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));

    // The documented one-shot bring-up, on this test's project, port, env file and data dir.
    const up = await runCommand(
      'bash',
      [composeUp],
      cleanEnvironment({
        COMPOSE_PROJECT_NAME: project,
        COMPOSE_FILE: [composeFile, override].join(':'),
        OUTPOST_PORT: String(port),
        OUTPOST_COMPOSE_ENV_FILE: envFile,
        OUTPOST_COMPOSE_AGENT_DATA_DIR: agentDataDir,
      }),
      180_000,
    );
    assert.equal(up.code, 0, `scripts/compose-up.sh failed (exit ${up.code}):\n${up.stderr}${up.stdout}\n${await describeAll()}`);

    // The admin token, read from the env file as the docs say to.
    const settings = await readFile(envFile, 'utf8');
    const adminToken = /^OUTPOST_BOOTSTRAP_TOKEN=(.+)$/m.exec(settings)?.[1];
    assert.ok(adminToken, `no OUTPOST_BOOTSTRAP_TOKEN in ${envFile}:\n${settings}\n${up.stderr}`);
    const published = await compose(['port', 'server', '8480']);
    assert.match(published.stdout.trim(), new RegExp(`:${port}$`), `the server should be published on port ${port}:\n${published.stderr}\n${await describeAll()}`);
    // What the e2e fixtures print as the server's log tail points at the compose logs.
    const serverNote = path.join(dir, 'server.log');
    await writeFile(serverNote, `the server runs in docker-compose project ${project}: see docker-compose logs below\n`);
    const server = composeServer(`http://127.0.0.1:${port}`, adminToken, serverNote);

    // The pool compose-up.sh made, and the compose agent registered in it with the docker driver.
    const pools = await apiCall<{ data: Resource<{ name: string }>[] }>(server, 'GET', '/api/v2/organizations/default/agent-pools', undefined, 200);
    const pool = pools.data.find((p) => p.attributes.name === composePool);
    assert.ok(pool, `no pool ${composePool}: ${JSON.stringify(pools.data)}\n${await describeAll()}`);
    const agentContainer = (await compose(['ps', '-q', 'agent'])).stdout.trim();
    assert.ok(agentContainer, `docker-compose ps shows no agent container\n${await describeAll()}`);
    // The agent names itself after its host name, the container's short id.
    const agentName = agentContainer.slice(0, 12);
    const agent = await waitUntil(
      `the compose agent ${agentName} to register in pool ${composePool}`,
      async () => (await listAgents(server, pool.id)).find((a) => a.attributes.name === agentName),
      describeAll,
      60_000,
    );
    assert.equal((agent as Agent & { attributes: { driver?: string } }).attributes.driver, 'docker', `${JSON.stringify(agent.attributes)}\n${await describeAll()}`);

    // A run with built-in resources only, queued and applied.
    const workspace = await createWorkspace(server, { poolId: pool.id, autoApply: true });
    const configuration = await uploadConfiguration(server, workspace.id, {
      'main.tf': [
        'resource "terraform_data" "compose" {',
        '  input = "applied by the compose agent"',
        '}',
        '',
        'output "greeting" {',
        '  value = terraform_data.compose.output',
        '}',
        '',
      ].join('\n'),
    });
    const run = await createRun(server, workspace.id, configuration);
    const applied = await withDiagnostics(waitForRunStatus(server, run.id, ['applied'], 90_000), describeAll);

    // The compose agent ran the apply in a job container.
    const applyLog = await readLog(server, relatedId(applied, 'apply'));
    assert.match(applyLog, new RegExp(`Outpost agent ${agentName}: apply job \\S+, driver docker`), `${applyLog}\n${await describeAll()}`);
    assert.match(applyLog, /Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./, `${applyLog}\n${await describeAll()}`);
    assert.deepEqual(outputsFromApplyLog(applyLog), { greeting: 'applied by the compose agent' }, `${applyLog}\n${await describeAll()}`);
  });
});
