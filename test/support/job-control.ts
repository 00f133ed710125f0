// Fixtures for the job-control end-to-end tests (cancel, force-cancel,
// single mode, engine downloads, token revocation): OpenTofu configurations
// built from built-in resources only, a local HTTP endpoint that holds the
// engine's requests for as long as a test wants (a plan- or apply-time step
// that does not stop on an interrupt), a gate in front of the release mirror,
// and checks for processes a job may have left behind.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AgentHandle, ServerHandle, TestHooks } from './cluster.ts';
import { createRun, getWorkspace, readLog, relatedId, uploadConfiguration } from './api-calls.ts';
import type { Cluster } from './test-cluster.ts';
import { waitUntil } from './waits.ts';

const run = promisify(execFile);

/** A configuration with no provisioner: applies in a moment. */
export function quickConfig(label = 'after'): Record<string, string> {
  return {
    'main.tf': `resource "terraform_data" "quick" {\n  input = "${label}"\n}\n\noutput "label" {\n  value = terraform_data.quick.output\n}\n`,
  };
}

/**
 * Something a provisioner runs for a minute, recognisable among all processes:
 * `/bin/sh -c "<command>"` carries the marker in its arguments, and the sleep
 * has a duration no other process uses, so either one left behind is found.
 */
export interface SleepingCommand {
  readonly marker: string;
  /** `sleep <this>`. */
  readonly duration: string;
  /** pgrep -f pattern that matches the shell and the sleep. */
  readonly pattern: string;
}

export function sleepingCommand(): SleepingCommand {
  const marker = `outpost-e2e-marker-${randomUUID()}`;
  const duration = `60.${String(randomInt(1_000_000, 10_000_000))}`;
  return { marker, duration, pattern: `${marker}|sleep ${duration.replace('.', '[.]')}` };
}

export interface SleepingConfigOptions {
  /** The provisioner's shell ignores SIGINT (`trap '' INT`). */
  readonly ignoreInterrupt?: boolean;
  /**
   * URL of an HTTP state the apply reads (a `terraform_remote_state` whose
   * address is only known after apply, so it is read during apply): the
   * engine waits for the answer and a graceful interrupt does not end that wait.
   */
  readonly applyTimeStateUrl?: string;
}

/** A `terraform_data` whose local-exec provisioner sleeps for a minute during apply. */
export function sleepingApplyConfig(command: SleepingCommand, options: SleepingConfigOptions = {}): Record<string, string> {
  const trap = options.ignoreInterrupt ? `trap '' INT; ` : '';
  const lines = [
    'resource "terraform_data" "slow" {',
    '  provisioner "local-exec" {',
    `    command = "${trap}sleep ${command.duration}; : ${command.marker}"`,
    '  }',
    '}',
  ];
  if (options.applyTimeStateUrl !== undefined) {
    lines.push(
      '',
      'resource "terraform_data" "address" {',
      `  input = "${options.applyTimeStateUrl}"`,
      '}',
      '',
      'data "terraform_remote_state" "held" {',
      '  backend = "http"',
      '  config = {',
      '    address = terraform_data.address.output',
      '  }',
      '}',
    );
  }
  return { 'main.tf': `${lines.join('\n')}\n` };
}

/** A plan that reads an HTTP state (`terraform_remote_state`, built in) at `url`. */
export function planTimeReadConfig(url: string): Record<string, string> {
  return {
    'main.tf': [
      'data "terraform_remote_state" "held" {',
      '  backend = "http"',
      '  config = {',
      `    address = "${url}"`,
      '  }',
      '}',
      '',
      'resource "terraform_data" "after_read" {',
      '  input = "planned"',
      '}',
      '',
    ].join('\n'),
  };
}

/**
 * An HTTP endpoint that records every request and answers none of them until
 * release(), which answers the held ones (and later ones) with an empty
 * OpenTofu state. Closed when the test ends.
 */
export class HeldEndpoint {
  readonly requests: string[] = [];
  readonly #held: http.ServerResponse[] = [];
  readonly #server: http.Server;
  readonly #host: string;
  #released = false;

  private constructor(host: string) {
    this.#host = host;
    this.#server = http.createServer((request, response) => {
      this.requests.push(`${request.method ?? '?'} ${request.url ?? ''}`);
      if (this.#released) this.#answer(response);
      else this.#held.push(response);
    });
  }

  /** On loopback; or on every interface, reached at `host` (a pod reaches the node's address). */
  static async start(t: TestHooks, host = '127.0.0.1'): Promise<HeldEndpoint> {
    const endpoint = new HeldEndpoint(host);
    await new Promise<void>((resolve) => endpoint.#server.listen(0, host === '127.0.0.1' ? host : '0.0.0.0', resolve));
    t.after(() => endpoint.close());
    return endpoint;
  }

  url(urlPath: string): string {
    return `http://${this.#host}:${(this.#server.address() as AddressInfo).port}${urlPath}`;
  }

  release(): void {
    this.#released = true;
    for (const response of this.#held.splice(0)) this.#answer(response);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #answer(response: http.ServerResponse): void {
    const state = { version: 4, terraform_version: '1.10.10', serial: 1, lineage: randomUUID(), outputs: {}, resources: [] };
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify(state));
  }
}

/**
 * A reverse proxy in front of the release mirror that holds requests for
 * `.zip` files until open(), so a test can have several jobs waiting for
 * the same download at once. Closed when the test ends.
 */
export class DownloadGate {
  readonly #server: http.Server;
  readonly #waiting: (() => void)[] = [];
  #open = false;

  private constructor(upstream: string) {
    this.#server = http.createServer((request, response) => {
      const forward = (): void => {
        const target = new URL(request.url ?? '/', upstream);
        const proxied = http.get(target, (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        });
        proxied.on('error', (error) => response.destroy(error));
      };
      if (this.#open || !(request.url ?? '').endsWith('.zip')) forward();
      else this.#waiting.push(forward);
    });
  }

  static async start(t: TestHooks, upstream: string): Promise<DownloadGate> {
    const gate = new DownloadGate(upstream);
    await new Promise<void>((resolve) => gate.#server.listen(0, '127.0.0.1', resolve));
    t.after(() => gate.close());
    return gate;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  get held(): number {
    return this.#waiting.length;
  }

  open(): void {
    this.#open = true;
    for (const forward of this.#waiting.splice(0)) forward();
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** `pid command line` of every process whose command line matches the extended regex. */
export async function processesMatching(pattern: string): Promise<string[]> {
  try {
    const { stdout } = await run('pgrep', ['-a', '-f', pattern]);
    return stdout.split('\n').filter((line) => line.trim() !== '');
  } catch (error) {
    // pgrep exits 1 when nothing matches.
    if ((error as { code?: unknown }).code === 1) return [];
    throw error;
  }
}

/**
 * Kills, when the test ends, the process groups of whatever still matches
 * `pattern()`: a job's sandbox is a process group of its own, which the
 * harness's cleanup of the agent does not reach, so a failed test would
 * otherwise leave a stuck engine or a sleeping provisioner behind.
 */
export function killLeftoversAfter(t: TestHooks, pattern: () => string): void {
  t.after(async () => {
    const killed = await killProcessGroupsMatching(pattern());
    if (killed.length > 0) console.error(`killed what the test's jobs left running:\n${killed.join('\n')}`);
  });
}

/**
 * SIGKILL to the process group of every process matching `pattern` (a job's
 * sandbox is a group of its own: the engine and what it started), or to the
 * process alone when its group is this test process's. Returns what matched.
 */
export async function killProcessGroupsMatching(pattern: string): Promise<string[]> {
  const matching = await processesMatching(pattern);
  const ownGroup = await processGroupOf(process.pid);
  for (const line of matching) {
    const pid = Number(line.split(' ')[0]);
    const group = await processGroupOf(pid);
    try {
      if (group !== undefined && group !== ownGroup) process.kill(-group, 'SIGKILL');
      else process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return matching;
}

/** The process group of `pid`; undefined for init's group (1), which `kill(-1)` would turn into every process. */
async function processGroupOf(pid: number): Promise<number | undefined> {
  try {
    const { stdout } = await run('ps', ['-o', 'pgid=', '-p', String(pid)]);
    const group = Number(stdout.trim());
    return Number.isInteger(group) && group > 1 ? group : undefined;
  } catch {
    return undefined;
  }
}

/** pgrep pattern for the engine processes of an agent's jobs (their arguments name the job directory). */
export function jobDirectoryPattern(agent: AgentHandle): string {
  return path.join(agent.dataDir, 'jobs').replaceAll('.', '[.]') + '/';
}

/** Waits until no process matches `pattern`; fails with what still runs and `describe()`. */
export async function waitForNoProcesses(
  pattern: string,
  describe: () => Promise<string> | string,
  timeoutMs = 15_000,
): Promise<void> {
  let last: string[] = [];
  await waitUntil(
    `no process matching /${pattern}/`,
    async () => {
      last = await processesMatching(pattern);
      return last.length === 0 ? true : undefined;
    },
    async () => `still running:\n${last.join('\n')}\n${await describe()}`,
    timeoutMs,
  );
}

/** Waits until a phase's log (`plan-…` / `apply-…`) matches; returns the log. */
export async function waitForLog(
  server: ServerHandle,
  phaseId: string,
  pattern: RegExp,
  describe: () => Promise<string> | string,
  timeoutMs = 60_000,
): Promise<string> {
  let log = '';
  return waitUntil(
    `the log of ${phaseId} to match ${String(pattern)}`,
    async () => {
      log = await readLog(server, phaseId);
      return pattern.test(log) ? log : undefined;
    },
    async () => `log so far:\n${log}\n${await describe()}`,
    timeoutMs,
  );
}

/** The agent's exit code; fails with its output when it is still running after `timeoutMs`. */
export async function exitCodeOf(agent: AgentHandle, timeoutMs = 60_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([agent.exited, timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout') assert.fail(`agent ${agent.name} still runs after ${timeoutMs / 1000} s:\n${agent.output()}`);
  return outcome;
}

/** Every file under `dir` (relative paths), or [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The id of the pool's only authentication token. */
export async function onlyPoolTokenId(server: ServerHandle, poolId: string): Promise<string> {
  const response = await server.api<{ data: { id: string }[] }>('GET', `/api/v2/agent-pools/${poolId}/authentication-tokens`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  assert.equal(response.body.data.length, 1, JSON.stringify(response.body));
  return response.body.data[0]!.id;
}

/** Waits until a provisioner started with `command` is sleeping (on the host or in a job container). */
export async function waitForSleepingProvisioner(
  command: SleepingCommand,
  runId: string,
  describe: () => Promise<string> | string,
): Promise<void> {
  await waitUntil(
    `the provisioner of run ${runId} to be sleeping`,
    async () => ((await processesMatching(`sleep ${command.duration.replace('.', '[.]')}`)).length > 0 ? true : undefined),
    describe,
  );
}

/** What OpenTofu prints when it receives SIGINT. */
export const tofuInterruptMessage = /Interrupt received\.\nPlease wait for OpenTofu to exit or data loss may occur\.\nGracefully shutting down\.\.\./;

/**
 * Server settings for cancel tests. Heartbeats also carry signals, and one
 * after a force-cancel makes the agent stop the job as stale. Spacing them
 * beyond the length of a test (with the lease timeout to match) leaves the
 * long-poll as the only way a signal arrives and the force-cancel kill timer
 * as the only thing that kills.
 */
export const quietHeartbeats: Readonly<Record<string, string>> = { OUTPOST_AGENT_HEARTBEAT_INTERVAL: '60s', OUTPOST_LEASE_TIMEOUT: '180s' };

/** The state lock is free and the workspace applies a new configuration (whose apply log matches `expected`). */
export async function assertWorkspaceUsable(cluster: Cluster, label: string, expected: readonly RegExp[] = []): Promise<void> {
  const workspace = await getWorkspace(cluster.server, cluster.workspace.id);
  assert.equal(workspace.attributes.locked, false, `the state is still locked:\n${await cluster.diagnostics()}`);
  const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, quickConfig(label));
  const next = await createRun(cluster.server, cluster.workspace.id, cv);
  await cluster.waitForRun(next.id, ['applied']);
  const applyLog = await readLog(cluster.server, relatedId(next, 'apply'));
  for (const pattern of [...expected, /Apply complete!/]) assert.match(applyLog, pattern, applyLog);
  assert.equal((await getWorkspace(cluster.server, cluster.workspace.id)).attributes.locked, false);
}
