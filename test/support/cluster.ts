// Starts the REAL control plane and agents for end-to-end tests: the same
// `node src/cli/main.ts server` and `agent run` a user starts, on a free
// port, with a temp data dir (and a fresh PostgreSQL database when asked).
//
//   test('plan runs', async (t) => {
//     const server = await startServer({ backend, t });
//     const agent = await startAgent(server, { token, t });
//     const res = await server.api('GET', '/api/v2/...');
//   });
//
// Passing `t` registers cleanup with the test: processes are killed, temp
// dirs removed and databases dropped when it ends, pass or fail; on failure
// the tail of each log is printed first. Children are also killed if the
// test process exits (spawned-process.ts).
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { agentEnvironment, cliCommand, generateAdminToken, serverEnvironment } from './cluster-environment.ts';
import { callApi, sendRequest, type ApiOptions, type ApiResponse } from './json-api-client.ts';
import { freePort } from './ports.ts';
import { createTestDatabase, type DatabaseBackend, type TestDatabase } from './postgres.ts';
import { logTail, readLog, spawnLogged, type SpawnedProcess } from './spawned-process.ts';
import { trustingDispatcher, type ServerTls } from './tls.ts';
import { tofuBinary } from './toolchain.ts';

export type { ApiOptions, ApiResponse } from './json-api-client.ts';

export type { TestHooks } from './test-hooks.ts';
import type { TestHooks } from './test-hooks.ts';

/** Something a test started that must be torn down when it ends. */
export interface TestResource {
  readonly logFile: string;
  cleanup(): Promise<void>;
}

export interface ServerHandle extends TestResource {
  /** `https://127.0.0.1:<port>` when started with `tls`, else `http://…`. */
  readonly url: string;
  /** The certificate files and CA the server was started with, when it serves HTTPS. */
  readonly tls?: ServerTls | undefined;
  readonly adminToken: string;
  readonly backend: DatabaseBackend;
  readonly dataDir: string;
  readonly database: TestDatabase | undefined;
  /** The current server process (a new one after restart()). */
  readonly process: ChildProcess;
  output(): string;
  /** SIGTERM (or `signal`), SIGKILL after 10 s; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL, like a crash. */
  kill(): Promise<number | null>;
  /** Stops the server if running, starts it again on the same port, data dir and database. */
  restart(): Promise<void>;
  api<T = unknown>(method: string, urlPath: string, body?: unknown, options?: ApiOptions): Promise<ApiResponse<T>>;
}

export interface ServerOptions {
  readonly backend: DatabaseBackend;
  readonly env?: Readonly<Record<string, string>>;
  readonly t?: TestHooks;
  /** The script Node runs: src/cli/main.ts unless given (benchmarks pass the shipped bin/outpost.js). */
  readonly entryPoint?: string;
  /** Address to listen on (default 127.0.0.1); 0.0.0.0 lets agents in a test's network namespace reach it. */
  readonly listenHost?: string;
  /**
   * Serve HTTPS with these files (OUTPOST_TLS_CERT, OUTPOST_TLS_KEY): the
   * handle's url is https, and its readiness check and api() trust the CA.
   */
  readonly tls?: ServerTls;
}

const healthTimeoutMs = 30_000;
const keepTempDirs = process.env.OUTPOST_TEST_KEEP_TEMP === '1';

// Temp dirs not yet cleaned up are removed when the test process exits, for
// tests that forgot cleanup ('exit' handlers can only do synchronous work).
const liveTempDirs = new Set<string>();
process.on('exit', () => {
  if (keepTempDirs) return;
  for (const dir of liveTempDirs) rmSync(dir, { recursive: true, force: true });
});

async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  liveTempDirs.add(dir);
  return dir;
}

export async function startServer(options: ServerOptions): Promise<ServerHandle> {
  const tempDir = await makeTempDir('outpost-server-');
  const dataDir = path.join(tempDir, 'data');
  const logFile = path.join(tempDir, 'server.log');
  let database: TestDatabase | undefined;
  let current: SpawnedProcess | undefined;
  let cleanedUp = false;
  // The test's own requests (readiness, api()) trust the test CA through this.
  const dispatcher = options.tls ? trustingDispatcher(options.tls.caPem) : undefined;

  const cleanup = async (): Promise<void> => {
    if (cleanedUp) return;
    cleanedUp = true;
    try {
      await current?.killGroup();
      await database?.drop();
    } finally {
      await removeTempDir(tempDir);
      await dispatcher?.close();
    }
  };

  try {
    const adminToken = generateAdminToken();
    if (options.backend === 'postgres') database = await createTestDatabase();
    // Picked last, just before the server binds it: the port is free only when picked.
    const port = await freePort();
    const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    const listen: Record<string, string> = options.listenHost ? { OUTPOST_LISTEN: `${options.listenHost}:${port}` } : {};
    const env = serverEnvironment({ dataDir, port, adminToken, databaseUrl: database?.url, tls: options.tls, extra: { ...listen, ...options.env } });
    const launch = async (): Promise<void> => {
      const listenedBefore = listeningLines(logFile);
      current = spawnLogged({ ...cliCommand(['server'], options.entryPoint), env, cwd: tempDir, logFile });
      await waitUntilHealthy(url, current, logFile, listenedBefore, dispatcher);
    };
    await launch();
    const running = (): SpawnedProcess => {
      if (current === undefined) throw new Error('server was never started');
      return current;
    };

    const handle: ServerHandle = Object.assign(processControls(running, logFile, launch), {
      url,
      tls: options.tls,
      adminToken,
      backend: options.backend,
      dataDir,
      logFile,
      database,
      api: <T,>(method: string, urlPath: string, body?: unknown, apiOptions?: ApiOptions) =>
        callApi<T>(url, adminToken, method, urlPath, body, { ...(dispatcher ? { dispatcher } : {}), ...apiOptions }),
      cleanup,
    });
    if (options.t) registerProcessCleanup(options.t, handle);
    return handle;
  } catch (error) {
    await cleanup();
    throw error;
  }
}

export interface AgentHandle extends TestResource {
  readonly name: string;
  readonly dataDir: string;
  /** The current agent process (a new one after restart()). */
  readonly process: ChildProcess;
  /** Exit code of the current process; null when a signal ended it. */
  readonly exited: Promise<number | null>;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL to the agent alone, like a crash: what it started keeps running until cleanup. */
  kill(): Promise<number | null>;
  /** Stops the agent if running and starts it again with the same name and data dir. */
  restart(): Promise<void>;
}

export interface AgentOptions {
  /** Pool token. */
  readonly token: string;
  readonly name?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly t?: TestHooks;
  /** The script Node runs: src/cli/main.ts unless given (benchmarks pass the shipped bin/outpost.js). */
  readonly entryPoint?: string;
  /** A command the agent runs under, e.g. `ip netns exec NAME` to run it in a test's network namespace. */
  readonly wrapper?: readonly string[];
}

/**
 * Starts `outpost agent run`; does not wait for it to register (check the API).
 * An agent of a server that serves HTTPS trusts its test CA.
 */
export async function startAgent(server: Pick<ServerHandle, 'url'> & { readonly tls?: ServerTls | undefined }, options: AgentOptions): Promise<AgentHandle> {
  const tempDir = await makeTempDir('outpost-agent-');
  const dataDir = path.join(tempDir, 'data');
  const logFile = path.join(tempDir, 'agent.log');
  const name = options.name ?? `test-agent-${randomBytes(4).toString('hex')}`;
  let current: SpawnedProcess | undefined;
  let cleanedUp = false;

  const cleanup = async (): Promise<void> => {
    if (cleanedUp) return;
    cleanedUp = true;
    await current?.killGroup();
    await removeTempDir(tempDir);
  };

  try {
    await mkdir(dataDir);
    const env = agentEnvironment({
      serverUrl: server.url,
      token: options.token,
      name,
      dataDir,
      enginePath: tofuBinary(),
      caFile: server.tls?.caFile,
      extra: options.env,
    });
    const command = cliCommand(['agent', 'run'], options.entryPoint);
    const [wrapper, ...wrapperArgs] = options.wrapper ?? [];
    const line = wrapper ? { command: wrapper, args: [...wrapperArgs, command.command, ...command.args] } : command;
    const launch = (): SpawnedProcess => spawnLogged({ ...line, env, cwd: tempDir, logFile });
    current = launch();
    const running = (): SpawnedProcess => {
      if (current === undefined) throw new Error('agent was never started');
      return current;
    };

    const handle: AgentHandle = Object.assign(
      processControls(running, logFile, () => {
        current = launch();
      }),
      { name, dataDir, logFile, cleanup },
    );
    if (options.t) registerProcessCleanup(options.t, handle);
    return handle;
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/**
 * Tears the resources down when the test ends, last listed first (list the
 * server before its agents), printing their logs first if the test failed.
 * startServer and startAgent call this themselves when given `t`.
 */
export function registerProcessCleanup(t: TestHooks, ...resources: TestResource[]): void {
  t.after(async () => {
    // TestContext.passed exists at run time in Node 24 but not yet in @types/node.
    const passed = (t as { passed?: boolean }).passed;
    if (passed === false) {
      for (const resource of resources) {
        console.error(`--- last lines of ${resource.logFile}\n${logTail(resource.logFile)}\n---`);
      }
    }
    for (const resource of [...resources].reverse()) await resource.cleanup();
  });
}

/** How many times the servers that wrote `logFile` said they were listening. */
function listeningLines(logFile: string): number {
  return readLog(logFile).split('\n').filter((line) => line.includes('"msg":"listening"')).length;
}

/**
 * Until GET /healthz answers 200 and this process has logged that it listens:
 * the port was free when picked, but another test's server may have taken it
 * since, and its answer must not pass for ours.
 */
async function waitUntilHealthy(url: string, server: SpawnedProcess, logFile: string, listenedBefore: number, dispatcher: Dispatcher | undefined): Promise<void> {
  const deadline = Date.now() + healthTimeoutMs;
  let lastProblem = 'no answer yet';
  while (Date.now() < deadline) {
    if (server.hasExited()) {
      const code = await server.exited;
      throw new Error(`server exited (code ${code}) before answering GET /healthz:\n${logTail(logFile)}`);
    }
    try {
      const response = await sendRequest(url, 'GET', '/healthz', {}, undefined, dispatcher, AbortSignal.timeout(2_000));
      if (response.status === 200 && listeningLines(logFile) > listenedBefore) return;
      lastProblem = response.status === 200 ? 'a server answers on the port, but this one has not said it listens' : `HTTP ${response.status}`;
    } catch (error) {
      lastProblem = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await server.killGroup();
  throw new Error(
    `server did not answer GET ${url}/healthz with 200 within ${healthTimeoutMs / 1000} s ` +
      `(last: ${lastProblem}):\n${logTail(logFile)}`,
  );
}

async function removeTempDir(dir: string): Promise<void> {
  if (keepTempDirs) {
    console.error(`OUTPOST_TEST_KEEP_TEMP=1: keeping ${dir}`);
    return;
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  liveTempDirs.delete(dir);
}

/**
 * What every handle of a spawned process offers. Getters read the current
 * process, which restart() replaces; restart() stops it, reaps whatever it
 * left in its process group (jobs, engines), and launches a new one.
 */
function processControls(running: () => SpawnedProcess, logFile: string, relaunch: () => Promise<void> | void) {
  return {
    get process(): ChildProcess {
      return running().child;
    },
    get exited(): Promise<number | null> {
      return running().exited;
    },
    output: (): string => readLog(logFile),
    stop: (signal?: NodeJS.Signals) => running().stop(signal),
    kill: () => running().kill(),
    async restart(): Promise<void> {
      const previous = running();
      await previous.stop();
      await previous.killGroup();
      await relaunch();
    },
  };
}
