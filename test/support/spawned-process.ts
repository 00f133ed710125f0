// Child processes that end-to-end tests start (servers, agents), with their
// output captured in a log file, and a safety net that kills them when the
// test process exits, however it exits.
//
// Each child gets its own process group (detached), so killing the group
// also takes out what it started (jobs, the engine), which would otherwise
// outlive the test. Signals meant to be handled gracefully (stop) go to the
// child alone, as a supervisor would send them.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';

export interface SpawnSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** stdout and stderr are appended here; a restart appends to the same file. */
  readonly logFile: string;
}

export interface SpawnedProcess {
  readonly child: ChildProcess;
  /** Exit code; null when a signal ended the process or it failed to spawn. */
  readonly exited: Promise<number | null>;
  readonly hasExited: () => boolean;
  /** Sends `signal` (SIGTERM) and waits; SIGKILLs the group after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  /** SIGKILL to the process alone, like a crash; its group is reaped later by killGroup. */
  kill(): Promise<number | null>;
  /** SIGKILL to the whole process group, then waits for the process. */
  killGroup(): Promise<number | null>;
  /** `signal` to the whole process group, as a terminal's Ctrl-C (SIGINT) reaches every process of the foreground job. */
  signalGroup(signal: NodeJS.Signals): void;
}

const liveGroups = new Set<number>();

export function spawnLogged(spec: SpawnSpec): SpawnedProcess {
  installExitSafetyNet();
  const logFd = openSync(spec.logFile, 'a');
  writeSync(logFd, `--- ${new Date().toISOString()} ${[spec.command, ...spec.args].join(' ')}\n`);
  let child: ChildProcess;
  try {
    child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: { ...spec.env },
      stdio: ['ignore', logFd, logFd],
      detached: true,
    });
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(logFd);
  }
  const groupId = child.pid;
  if (groupId !== undefined) liveGroups.add(groupId);

  let done = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      done = true;
      resolve(code);
    });
    child.once('error', (error) => {
      // Spawn failures (ENOENT, EACCES) emit 'error' without 'exit'.
      appendLine(spec.logFile, `--- spawn failed: ${error.message}`);
      done = true;
      resolve(null);
    });
  });

  const killGroup = async (): Promise<number | null> => {
    if (groupId !== undefined) {
      signalGroup(groupId, 'SIGKILL');
      liveGroups.delete(groupId);
    }
    return exited;
  };

  return {
    child,
    exited,
    hasExited: () => done,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (done) return exited;
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace-over'>((resolve) => {
        timer = setTimeout(() => resolve('grace-over'), graceMs);
      });
      const outcome = await Promise.race([exited, graceOver]);
      clearTimeout(timer);
      if (outcome === 'grace-over') {
        appendLine(spec.logFile, `--- still running ${graceMs} ms after ${signal}: SIGKILL`);
        return killGroup();
      }
      return exited;
    },
    async kill() {
      if (!done) child.kill('SIGKILL');
      return exited;
    },
    killGroup,
    signalGroup: (signal) => {
      if (groupId !== undefined && !done) signalGroup(groupId, signal);
    },
  };
}

/** The log file's content so far ('' when it does not exist yet). */
export function readLog(logFile: string): string {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
}

/** The last `lines` lines of a log file, for error messages. */
export function logTail(logFile: string, lines = 60): string {
  return readLog(logFile).trimEnd().split('\n').slice(-lines).join('\n');
}

function appendLine(logFile: string, line: string): void {
  try {
    const fd = openSync(logFile, 'a');
    writeSync(fd, `${line}\n`);
    closeSync(fd);
  } catch {
    // The temp dir may already be gone; the line was only informative.
  }
}

function signalGroup(groupId: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-groupId, signal);
  } catch {
    // ESRCH: every process of the group has already exited.
  }
}

let safetyNetInstalled = false;

// 'exit' handlers must be synchronous, and process.kill is. Signals to the
// test process itself (Ctrl-C, the runner's timeout) do not reach detached
// children, so we forward the kill and then let the signal take its course.
function installExitSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', killAllGroups);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllGroups();
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function killAllGroups(): void {
  for (const groupId of liveGroups) signalGroup(groupId, 'SIGKILL');
  liveGroups.clear();
}
