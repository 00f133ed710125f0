// How end-to-end tests start the real `outpost` processes: the command line
// and the environment, as pure functions so they can be checked without
// starting anything (test/support/support.test.ts).
import { randomInt } from 'node:crypto';
import path from 'node:path';

export const repositoryRoot = path.resolve(import.meta.dirname, '..', '..');
export const cliEntryPoint = path.join(repositoryRoot, 'src', 'cli', 'main.ts');
/** The installed command: the compiled dist/ (`npm run build`), for benchmarks of what ships. */
export const shippedEntryPoint = path.join(repositoryRoot, 'bin', 'outpost.js');

export interface CommandLine {
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * `node src/cli/main.ts <args>`, with the Node that runs the tests
 * (process.execPath: Node 24, which the system `node` may not be).
 */
export function cliCommand(args: readonly string[], entryPoint = cliEntryPoint): CommandLine {
  return { command: process.execPath, args: [entryPoint, ...args] };
}

const tokenAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** An admin API token in the server's format: `opa_` and 40 letters or digits. */
export function generateAdminToken(): string {
  let secret = '';
  for (let i = 0; i < 40; i += 1) secret += tokenAlphabet[randomInt(tokenAlphabet.length)];
  return `opa_${secret}`;
}

/**
 * The test process's environment minus what must not leak into a child:
 * any OUTPOST_* setting of the developer's shell (say OUTPOST_DATABASE_URL
 * reaching a server meant to use SQLite), and the test runner's own marker,
 * which would make a child that happens to load node:test report to it.
 */
export function inheritedEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name.startsWith('OUTPOST_') || name === 'NODE_TEST_CONTEXT') continue;
    kept[name] = value;
  }
  return kept;
}

export interface ServerEnvironmentInput {
  readonly dataDir: string;
  readonly port: number;
  readonly adminToken: string;
  /** PostgreSQL database URL; SQLite in the data dir when absent. */
  readonly databaseUrl?: string | undefined;
  /** PEM files to serve HTTPS with; plain HTTP when absent. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Overrides and additions, applied last. */
  readonly extra?: Readonly<Record<string, string>> | undefined;
  readonly inherited?: NodeJS.ProcessEnv | undefined;
}

export function serverEnvironment(input: ServerEnvironmentInput): Record<string, string> {
  return {
    ...inheritedEnvironment(input.inherited),
    OUTPOST_DATA_DIR: input.dataDir,
    OUTPOST_LISTEN: `127.0.0.1:${input.port}`,
    OUTPOST_BOOTSTRAP_TOKEN: input.adminToken,
    OUTPOST_LOG_FORMAT: 'json',
    // Tests that kill agents should not wait for the production sweep.
    OUTPOST_SWEEP_INTERVAL: '1s',
    ...(input.databaseUrl === undefined ? {} : { OUTPOST_DATABASE_URL: input.databaseUrl }),
    ...(input.tls === undefined ? {} : { OUTPOST_TLS_CERT: input.tls.certFile, OUTPOST_TLS_KEY: input.tls.keyFile }),
    ...input.extra,
  };
}

export interface AgentEnvironmentInput {
  readonly serverUrl: string;
  readonly token: string;
  readonly name: string;
  readonly dataDir: string;
  /** The engine binary the agent uses when it cannot download one. */
  readonly enginePath: string;
  /** PEM of the CA a test server's certificate is from, when it serves HTTPS. */
  readonly caFile?: string | undefined;
  readonly extra?: Readonly<Record<string, string>> | undefined;
  readonly inherited?: NodeJS.ProcessEnv | undefined;
}

export function agentEnvironment(input: AgentEnvironmentInput): Record<string, string> {
  return {
    ...inheritedEnvironment(input.inherited),
    OUTPOST_URL: input.serverUrl,
    OUTPOST_AGENT_TOKEN: input.token,
    OUTPOST_AGENT_NAME: input.name,
    OUTPOST_AGENT_DATA_DIR: input.dataDir,
    OUTPOST_AGENT_LOG_FORMAT: 'json',
    // The driver under test is chosen explicitly: CI runs a Docker daemon,
    // which `auto` would pick. Docker suites pass OUTPOST_AGENT_DRIVER=docker.
    OUTPOST_AGENT_DRIVER: 'local',
    // Test machines reach no release site, so the locally built tofu is it.
    OUTPOST_AGENT_ENGINE_PATH: input.enginePath,
    // A version the tests do not have must fail fast, not start a build from
    // source (test/e2e/fresh-clone.test.ts is the one that builds).
    OUTPOST_AGENT_ENGINE_BUILD: 'off',
    // A server with a test CA's certificate is trusted as a company CA would
    // be: by Node (the agent and its jobs) and by Go (the engine's http state
    // backend, which reaches the server too).
    ...(input.caFile === undefined ? {} : { NODE_EXTRA_CA_CERTS: input.caFile, SSL_CERT_FILE: input.caFile }),
    ...input.extra,
  };
}
