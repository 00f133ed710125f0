// The stock `tofu` CLI as a user runs it against Outpost as a TFE host: a
// `cloud` block (or `backend "remote"`) naming the server as
// `localhost:<port>`, the token in a CLI configuration `credentials` block
// (TF_CLI_CONFIG_FILE), the test CA trusted through SSL_CERT_FILE, and no
// network beyond loopback. Each command is logged at TF_LOG=trace into a
// file of its own, and a failure message shows what tofu printed, its log's
// errors, and the API requests the server answered while it ran (the server
// logs them at OUTPOST_LOG_LEVEL=debug: tofuServerEnv).
//
// Interactive use needs no terminal: tofu reads an answer from stdin as a
// line whenever input is enabled (no -input=false, no TF_INPUT=0), so
// `start()` then `waitForOutput('Enter a value:')` then `write('yes\n')`
// is what a person typing does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inheritedEnvironment } from './cluster-environment.ts';
import type { ServerHandle, TestHooks } from './cluster.ts';
import { tempDir } from './files.ts';
import type { DatabaseBackend } from './postgres.ts';
import { setupCluster, type Cluster } from './test-cluster.ts';
import { makeTestCertificates } from './tls.ts';
import { tofuBinary } from './toolchain.ts';

/** Server settings for these tests: the request log that failure messages quote. */
export const tofuServerEnv: Readonly<Record<string, string>> = { OUTPOST_LOG_LEVEL: 'debug' };

/**
 * Agent settings for these tests: the engine's release files are looked up
 * on a loopback port where nothing listens (the discard port), so the agent
 * falls back to the locally built tofu without reaching for the internet.
 */
export const tofuAgentEnv: Readonly<Record<string, string>> = { OUTPOST_AGENT_BINARY_MIRROR: 'http://127.0.0.1:9/' };

/** The organization every Outpost installation has. */
export const organization = 'default';

const defaultTimeoutMs = 300_000;

export interface TofuResult {
  readonly command: string;
  /** Exit code; null when a signal ended tofu. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** What tofu printed, colours removed. */
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  /** Everything a failure message needs: output, trace-log errors, the server's requests meanwhile. */
  describe(): string;
}

export interface TofuProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far, colours removed. */
  output(): string;
  /** Resolves with the output so far once it matches `pattern` after `from` characters; fails on exit or timeout. */
  waitForOutput(pattern: string | RegExp, options?: { from?: number; timeoutMs?: number }): Promise<string>;
  /** Types into tofu's stdin. */
  write(text: string): void;
  /** SIGINT to tofu alone, as Ctrl-C in a terminal. */
  interrupt(): void;
  /** SIGKILL to tofu and everything it started, as a crash or a closed laptop. */
  kill(): void;
  readonly finished: Promise<TofuResult>;
}

export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** Written to stdin, which is then closed; without it stdin stays open for write(). */
  readonly input?: string;
}

export interface TofuCli {
  /** `localhost:<port>`: the host name in `cloud` blocks and `credentials`. */
  readonly hostname: string;
  readonly cliConfigFile: string;
  /** Runs `tofu <args>` in `cwd` and waits for it to exit. */
  run(cwd: string, args: readonly string[], options?: RunOptions): Promise<TofuResult>;
  /** Starts `tofu <args>` in `cwd` with stdin open, for prompts and signals. */
  start(cwd: string, args: readonly string[], options?: RunOptions): TofuProcess;
}

// ESC [ … letter: the colour codes tofu writes even to a pipe.
const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g');

export function stripAnsi(text: string): string {
  return text.replace(ansi, '');
}

/**
 * A tofu set up for `server` (which must serve HTTPS: a cloud host is always
 * reached over https): home, CLI configuration with the token, trace logs,
 * in a temp dir removed when the test ends.
 */
/** A cluster serving HTTPS with a test CA (its agents trusting it) and a tofu that trusts it too: what every tofu suite starts from. */
export async function setupTofuCluster(hooks: TestHooks, backend: DatabaseBackend): Promise<{ cluster: Cluster; tofu: TofuCli }> {
  const certificates = await makeTestCertificates(hooks);
  const cluster = await setupCluster(hooks, backend, { tls: certificates, serverEnv: tofuServerEnv, agentEnv: tofuAgentEnv });
  return { cluster, tofu: await tofuCli(hooks, cluster.server) };
}

export async function tofuCli(t: TestHooks, server: ServerHandle, options: { token?: string } = {}): Promise<TofuCli> {
  if (server.tls === undefined) throw new Error('tofu reaches a cloud host over HTTPS only: start the server with `tls`');
  const dir = await tempDir(t, 'outpost-tofu-');
  const home = path.join(dir, 'home');
  // An empty mirror is the only place providers may come from: a
  // configuration that needs anything but the built-in provider fails at
  // once instead of trying to reach a registry.
  const mirror = path.join(dir, 'no-providers');
  await mkdir(home, { recursive: true });
  await mkdir(mirror, { recursive: true });
  const hostname = `localhost:${new URL(server.url).port}`;
  const cliConfigFile = path.join(dir, 'cli.tfrc');
  await writeFile(
    cliConfigFile,
    [
      `credentials "${hostname}" {`,
      `  token = "${options.token ?? server.adminToken}"`,
      '}',
      '',
      'provider_installation {',
      '  filesystem_mirror {',
      `    path    = "${mirror}"`,
      '    include = ["*/*/*"]',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const environment = (): Record<string, string> => {
    const env: Record<string, string> = {};
    // A developer's TF_WORKSPACE, TF_CLI_ARGS or TF_LOG must not change what the test runs.
    for (const [name, value] of Object.entries(inheritedEnvironment())) if (!name.startsWith('TF_')) env[name] = value;
    return {
      ...env,
      HOME: home,
      TF_CLI_CONFIG_FILE: cliConfigFile,
      SSL_CERT_FILE: server.tls!.caFile,
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      TF_LOG: 'trace',
    };
  };
  let commands = 0;
  const children = new Set<ChildProcess>();
  t.after(() => {
    for (const child of children) killGroup(child);
  });

  const start = (cwd: string, args: readonly string[], runOptions: RunOptions = {}): TofuProcess => {
    commands += 1;
    const traceLog = path.join(dir, `tofu-${commands}-${args[0] ?? 'none'}.log`);
    const command = `tofu ${args.join(' ')}`;
    const serverMark = server.output().length;
    const child = spawn(tofuBinary(), [...args], {
      cwd,
      env: { ...environment(), TF_LOG_PATH: traceLog, ...runOptions.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      // A group of its own: a kill reaches what tofu started (a provisioner's shell).
      detached: true,
    });
    children.add(child);
    if (runOptions.input !== undefined) child.stdin.end(runOptions.input);
    child.stdin.on('error', () => {
      // tofu exited before reading what was typed: its exit tells why.
    });
    let stdout = '';
    let stderr = '';
    let combined = '';
    let exited = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      combined += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      combined += chunk.toString('utf8');
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, runOptions.timeoutMs ?? defaultTimeoutMs);
    const finished = new Promise<TofuResult>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        exited = true;
        clearTimeout(timer);
        children.delete(child);
        const result: TofuResult = {
          command,
          code,
          signal,
          stdout: stripAnsi(stdout),
          stderr: stripAnsi(stderr),
          timedOut,
          describe: () => describeRun(result, traceLog, server, serverMark),
        };
        resolve(result);
      };
      child.once('error', (error) => {
        stderr += `\n(spawn failed: ${error.message})`;
        done(null, null);
      });
      child.once('close', done);
    });
    return {
      child,
      output: () => stripAnsi(combined),
      async waitForOutput(pattern, waitOptions = {}) {
        const deadline = Date.now() + (waitOptions.timeoutMs ?? 120_000);
        const matches = (): boolean => {
          const text = stripAnsi(combined).slice(waitOptions.from ?? 0);
          return typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
        };
        while (!matches()) {
          if (exited || Date.now() > deadline) {
            const result = exited ? await finished : undefined;
            throw new Error(
              `${command} ${exited ? 'exited' : 'still runs'} without printing ${String(pattern)}\n` +
                (result ? result.describe() : `--- output so far\n${stripAnsi(combined)}\n${traceErrors(traceLog)}\n${requestsSince(server, serverMark)}`),
            );
          }
          await sleep(50);
        }
        return stripAnsi(combined);
      },
      write: (text) => {
        child.stdin.write(text);
      },
      interrupt: () => {
        if (!exited) child.kill('SIGINT');
      },
      kill: () => killGroup(child),
      finished,
    };
  };

  return {
    hostname,
    cliConfigFile,
    start,
    run: (cwd, args, runOptions = {}) => start(cwd, args, { input: '', ...runOptions }).finished,
  };
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function describeRun(result: TofuResult, traceLog: string, server: ServerHandle, serverMark: number): string {
  return [
    `${result.command}: ${result.timedOut ? 'timed out, killed' : `exit code ${result.code}${result.signal ? ` (${result.signal})` : ''}`}`,
    `--- stdout\n${result.stdout}`,
    `--- stderr\n${result.stderr}`,
    traceErrors(traceLog),
    requestsSince(server, serverMark),
  ].join('\n');
}

/** The trace log's warnings and errors (HTTP failures, discovery), and its last lines. */
function traceErrors(traceLog: string): string {
  if (!existsSync(traceLog)) return '--- no trace log';
  const lines = readFileSync(traceLog, 'utf8').split('\n');
  const notable = lines.filter((line) => /\[(ERROR|WARN)\]|disco|cloud:|remote:|retry|HTTP/i.test(line)).slice(-40);
  return `--- trace log ${traceLog}: warnings, errors, HTTP\n${notable.join('\n')}\n--- last lines\n${lines.slice(-15).join('\n')}`;
}

/**
 * `METHOD path -> status` of each TFE API request the server answered since
 * `mark` (a length of server.output()): what tofu asked and what it got. The
 * agents' own protocol is left out.
 */
export function requestsSince(server: ServerHandle, mark: number): string {
  const lines: string[] = [];
  const problems: string[] = [];
  for (const line of server.output().slice(mark).split('\n')) {
    let entry: { msg?: string; level?: number; method?: string; path?: string; status?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      // Not the server's JSON: a crash's stack trace, or the harness's own lines.
      if (line.trim() !== '') problems.push(line);
      continue;
    }
    // pino's levels: 40 warn, 50 error, 60 fatal.
    if ((entry.level ?? 0) >= 40) problems.push(line);
    if (entry.msg !== 'request' || entry.path?.startsWith('/api/agent/')) continue;
    lines.push(`${entry.method ?? '?'} ${entry.path ?? '?'} -> ${entry.status ?? '?'}`);
  }
  return [
    `--- requests the server answered meanwhile (OUTPOST_LOG_LEVEL=debug)\n${lines.length > 0 ? lines.join('\n') : '(none logged)'}`,
    `--- server warnings and errors meanwhile\n${problems.length > 0 ? problems.slice(-20).join('\n') : '(none)'}`,
  ].join('\n');
}

/** The run ids tofu printed (its "To view this run in a browser" URLs), in order. */
export function runIdsIn(output: string): string[] {
  return [...output.matchAll(/\/runs\/(run-[A-Za-z0-9]+)/g)].map((match) => match[1] as string);
}

/** The last run id tofu printed; fails when it printed none. */
export function lastRunId(result: TofuResult): string {
  const ids = runIdsIn(result.stdout + result.stderr);
  const id = ids.at(-1);
  if (id === undefined) throw new Error(`tofu printed no run URL\n${result.describe()}`);
  return id;
}

export type WorkspaceSelection = { readonly name: string } | { readonly tags: readonly string[] };

/** A `terraform { cloud { … } }` block for the server. */
export function cloudBlock(hostname: string, workspaces: WorkspaceSelection): string {
  const selection = 'name' in workspaces ? `name = "${workspaces.name}"` : `tags = [${workspaces.tags.map((tag) => `"${tag}"`).join(', ')}]`;
  return [
    'terraform {',
    '  cloud {',
    `    hostname     = "${hostname}"`,
    `    organization = "${organization}"`,
    '    workspaces {',
    `      ${selection}`,
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A `terraform { backend "remote" { … } }` block for the server. */
export function remoteBackendBlock(hostname: string, workspaceName: string): string {
  return [
    'terraform {',
    '  backend "remote" {',
    `    hostname     = "${hostname}"`,
    `    organization = "${organization}"`,
    '    workspaces {',
    `      name = "${workspaceName}"`,
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A configuration of built-in resources only, with outputs of each kind tofu shows differently. */
export function greetingConfig(greeting: string): string {
  return [
    'resource "terraform_data" "greeting" {',
    `  input = "${greeting}"`,
    '}',
    '',
    'output "greeting" {',
    '  value = terraform_data.greeting.output',
    '}',
    '',
    'output "details" {',
    '  value = { count = 3, tags = ["a", "b"] }',
    '}',
    '',
    'output "secret" {',
    `  value     = "s3cr3t-${greeting}"`,
    '  sensitive = true',
    '}',
    '',
  ].join('\n');
}
