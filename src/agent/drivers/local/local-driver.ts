// The local driver: the operation runs as a subprocess in its own process
// group and job directory. The group lets force-cancel kill the engine and
// any provisioner children at once; the operation alone receives SIGINT so
// the engine is interrupted exactly once (a second SIGINT aborts OpenTofu
// without saving state).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { Driver, DriverCapabilities, ExitResult, RunningTask, TaskHandle, TaskSpec } from '../driver.ts';

export class LocalDriver implements Driver {
  readonly name = 'local';
  readonly #children = new Map<string, { child: ChildProcess; exit: Promise<ExitResult> }>();

  capabilities(): DriverCapabilities {
    return { signals: true, recover: false };
  }

  async fingerprint(): Promise<{ healthy: boolean; detail: string }> {
    return { healthy: true, detail: 'subprocesses on this host' };
  }

  async start(spec: TaskSpec): Promise<RunningTask> {
    await mkdir(spec.workdir, { recursive: true, mode: 0o700 });
    const [command, ...args] = spec.command;
    if (!command) throw new Error('empty command');
    const child = spawn(command, args, {
      cwd: spec.workdir,
      env: { ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const output = new PassThrough();
    let open = 2;
    const end = () => {
      if (--open === 0) output.end();
    };
    child.stdout!.on('data', (chunk: Buffer) => output.write(chunk)).on('end', end);
    child.stderr!.on('data', (chunk: Buffer) => output.write(chunk)).on('end', end);
    const exit = new Promise<ExitResult>((resolve) => {
      child.once('error', (error) => {
        output.write(`failed to start the job operation: ${error.message}\n`);
        resolve({ code: 127, signal: null, oomKilled: false });
      });
      child.once('exit', (code, signal) => resolve({ code, signal, oomKilled: false }));
    });
    const handle: TaskHandle = {
      version: 1,
      driver: this.name,
      jobId: spec.jobId,
      agentId: spec.agentId,
      workdir: spec.workdir,
      ref: String(child.pid ?? ''),
      startedAt: Date.now(),
    };
    this.#children.set(spec.jobId, { child, exit });
    return { handle, output };
  }

  async wait(handle: TaskHandle): Promise<ExitResult> {
    const entry = this.#children.get(handle.jobId);
    if (!entry) return { code: null, signal: null, oomKilled: false };
    return entry.exit;
  }

  async signal(handle: TaskHandle, signal: NodeJS.Signals): Promise<void> {
    const pid = Number(handle.ref);
    if (pid > 0) tryKill(pid, signal);
  }

  async stop(handle: TaskHandle, timeoutMs: number): Promise<void> {
    await this.signal(handle, 'SIGINT');
    const entry = this.#children.get(handle.jobId);
    const exited = entry ? entry.exit.then(() => true) : Promise.resolve(true);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    if (!(await Promise.race([exited, timedOut]))) killGroup(handle);
  }

  async destroy(handle: TaskHandle): Promise<void> {
    killGroup(handle);
    this.#children.delete(handle.jobId);
    await rm(handle.workdir, { recursive: true, force: true });
  }

  async inspect(handle: TaskHandle): Promise<{ running: boolean }> {
    const pid = Number(handle.ref);
    return { running: pid > 0 && tryKill(pid, 0) };
  }

  async recover(handle: TaskHandle): Promise<RunningTask | undefined> {
    // The output pipes died with the previous agent process: the job cannot
    // be followed any more, so the caller fails it and destroys the sandbox.
    void handle;
    return undefined;
  }
}

/** Kills the operation's whole process group (engine, provisioners). */
function killGroup(handle: TaskHandle): void {
  const pid = Number(handle.ref);
  if (pid > 0) tryKill(-pid, 'SIGKILL');
}

function tryKill(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
