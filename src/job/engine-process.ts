// Runs the engine (tofu or terraform) as a child process. Its stdout and
// stderr are merged into the run log in the order they arrive, so an error
// message appears next to the output that led to it. The child stays in our
// process group (not detached): a force-cancel kills the group, engine
// included. A graceful cancel is forwarded as one SIGINT, on which OpenTofu
// and Terraform stop at a safe point and release the state lock; a second
// SIGINT would make them abort without cleaning up, so it is never sent.
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { OutpostError } from '../protocol/errors.ts';
import type { Cancellation } from './cancellation.ts';

export interface EngineInvocation {
  readonly enginePath: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Keep stdout out of the log and return it (for `show -json`); stderr is still logged. */
  readonly captureStdout?: boolean;
}

export interface EngineExit {
  /** Exit code, or null when the engine was killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Captured stdout (empty unless captureStdout). */
  readonly stdout: Buffer;
  /** Whether a cancel interrupted this run. */
  readonly interrupted: boolean;
}

export type OutputListener = (text: string) => void;

export function runEngine(invocation: EngineInvocation, output: OutputListener, cancellation: Cancellation): Promise<EngineExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(invocation.enginePath, [...invocation.args], {
      cwd: invocation.cwd,
      env: invocation.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const captured: Buffer[] = [];
    let interrupted = false;
    let failedToStart = false;

    // One decoder per stream: a multi-byte character may be split across chunks.
    const stdoutText = new StringDecoder('utf8');
    const stderrText = new StringDecoder('utf8');
    child.stdout.on('data', (chunk: Buffer) => {
      if (invocation.captureStdout) captured.push(chunk);
      else output(stdoutText.write(chunk));
    });
    child.stderr.on('data', (chunk: Buffer) => output(stderrText.write(chunk)));

    const stopListening = cancellation.onRequest(() => {
      if (interrupted || child.exitCode !== null || child.signalCode !== null) return;
      interrupted = true;
      child.kill('SIGINT');
    });

    child.on('error', (error: NodeJS.ErrnoException) => {
      // Only spawn failures land here (missing binary, not executable).
      failedToStart = true;
      stopListening();
      reject(new OutpostError('engine_unavailable', `cannot start the engine ${invocation.enginePath}: ${error.message}`));
    });
    // 'close' waits for both pipes to drain, so no output is lost.
    child.on('close', (code, signal) => {
      stopListening();
      if (failedToStart) return;
      if (!invocation.captureStdout) output(stdoutText.end());
      output(stderrText.end());
      resolve({ code, signal, stdout: Buffer.concat(captured), interrupted });
    });
  });
}

/** "tofu plan exited with code 1", for the job result. */
export function describeEngineExit(engineCommand: string, subcommand: string, exit: EngineExit): string {
  if (exit.code !== null) return `${engineCommand} ${subcommand} exited with code ${exit.code}`;
  return `${engineCommand} ${subcommand} was stopped by ${exit.signal ?? 'a signal'}`;
}
