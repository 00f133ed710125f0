// The `outpost` CLI as a user runs it against a test server.
import { spawn } from 'node:child_process';
import { cliCommand, inheritedEnvironment } from './cluster-environment.ts';
import type { ServerHandle, TestHooks } from './cluster.ts';
import { defaultTimeoutMs } from './waits.ts';

export interface CliResult {
  /** Exit code; null when a signal ended the process. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node src/cli/main.ts <args>` against the server with its admin token
 * (OUTPOST_URL / OUTPOST_TOKEN) and waits for it to exit; killed when the
 * test ends or after `timeoutMs`.
 */
export async function runCli(
  t: TestHooks,
  server: ServerHandle,
  args: readonly string[],
  options: { cwd?: string; env?: Readonly<Record<string, string>>; timeoutMs?: number; /** Written to stdin, which is then closed (else there is none). */ input?: string } = {},
): Promise<CliResult> {
  const command = cliCommand(args);
  const child = spawn(command.command, [...command.args], {
    cwd: options.cwd,
    env: { ...inheritedEnvironment(), OUTPOST_URL: server.url, OUTPOST_TOKEN: server.adminToken, ...options.env },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  }).finally(() => clearTimeout(timer));
  return { code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
}
