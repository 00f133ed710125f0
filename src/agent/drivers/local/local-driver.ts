// The local driver: the operation runs as a subprocess in its own process
// group and job directory. The group lets force-cancel kill the engine and
// any provisioner children at once; the operation alone receives SIGINT so
// the engine is interrupted exactly once (a second SIGINT aborts OpenTofu
// without saving state).
//
// It cannot recover a sandbox: the operation's output goes through pipes to
// the agent process, and they die with it, so a restarted agent could
// neither read the rest of the output nor learn the exit. Its capabilities
// say so, and a restarted agent removes what its previous process left.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Driver, DriverCapabilities, ExitResult, RunningTask, TaskHandle, TaskSpec } from '../driver.ts';
import { processGroupResidentBytes } from '../memory-usage.ts';

export interface LocalDriverOptions {
  /** The agent's data dir: its jobs' directories are under `jobs/`, where their processes run. */
  readonly dataDir: string;
}

export class LocalDriver implements Driver {
  readonly name = 'local';
  readonly #jobsDir: string;
  readonly #children = new Map<string, { child: ChildProcess; exit: Promise<ExitResult> }>();

  constructor(options: LocalDriverOptions) {
    this.#jobsDir = path.join(options.dataDir, 'jobs');
  }

  capabilities(): DriverCapabilities {
    return { recover: false, isolatesFiles: false, sharesAgentLoopback: true };
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
      // pid plus its start time: after an agent restart the pid may belong to
      // another process, which must never be signalled.
      ref: child.pid ? `${child.pid}:${processStartTime(child.pid) ?? ''}` : '',
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
    const pid = livePid(handle);
    if (pid !== undefined) tryKill(pid, signal);
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
    return { running: livePid(handle) !== undefined };
  }

  async recover(handle: TaskHandle): Promise<RunningTask | undefined> {
    // The output pipes died with the previous agent process (see the top of this file).
    void handle;
    return undefined;
  }

  /**
   * A sandbox is found by where its processes run: in a job's directory
   * (the operation starts there, the engine and its provisioners below it).
   * Each process group found there for a job no handle names is killed.
   */
  async removeOrphans(known: ReadonlySet<string>): Promise<number> {
    const ownGroup = processGroupOf(process.pid);
    const orphans = new Map<string, Set<number>>();
    for (const entry of await readdir('/proc').catch(() => [] as string[])) {
      const pid = Number(entry);
      if (!(pid > 0)) continue;
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
      const jobId = cwd === undefined ? undefined : jobOfDirectory(this.#jobsDir, cwd.replace(/ \(deleted\)$/, ''));
      const group = processGroupOf(pid);
      if (jobId === undefined || known.has(jobId) || group === undefined || group <= 1 || group === ownGroup) continue;
      orphans.set(jobId, (orphans.get(jobId) ?? new Set()).add(group));
    }
    for (const groups of orphans.values()) for (const group of groups) tryKill(-group, 'SIGKILL');
    return orphans.size;
  }

  async memoryUsage(handle: TaskHandle): Promise<number | undefined> {
    // The operation leads the group (detached), which holds the engine and whatever it starts.
    const group = Number(handle.ref.split(':')[0]);
    return group > 0 ? processGroupResidentBytes(group) : undefined;
  }
}

/** The handle's pid if that process is still the one the handle names. */
function livePid(handle: TaskHandle): number | undefined {
  const [pidText, started] = handle.ref.split(':');
  const pid = Number(pidText);
  if (!(pid > 0)) return undefined;
  const current = processStartTime(pid);
  if (current === undefined || (started !== undefined && started !== '' && current !== started)) return undefined;
  return pid;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), if it exists. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The job whose directory (`<jobs dir>/<job id>`) `dir` is, or is inside. */
function jobOfDirectory(jobsDir: string, dir: string): string | undefined {
  const relative = path.relative(jobsDir, dir);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return relative.split(path.sep)[0];
}

/** The process group of a process (field 5 of /proc/PID/stat), if it exists. */
function processGroupOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    return Number.isInteger(group) ? group : undefined;
  } catch {
    return undefined;
  }
}

/** Kills the operation's whole process group (engine, provisioners). */
function killGroup(handle: TaskHandle): void {
  const pid = livePid(handle) ?? Number(handle.ref.split(':')[0]);
  // The group outlives its leader: kill it even when the leader has exited,
  // unless the pid now names an unrelated live process.
  if (pid > 0 && (livePid(handle) !== undefined || processStartTime(pid) === undefined)) tryKill(-pid, 'SIGKILL');
}

function tryKill(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
