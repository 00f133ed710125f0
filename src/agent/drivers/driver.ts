// The driver interface (docs/drivers.md), modeled on Nomad's task drivers: a
// driver decides *where* a job's command runs and knows nothing about
// Terraform. Every driver passes the same conformance suite.
import type { Readable } from 'node:stream';

export interface TaskSpec {
  jobId: string;
  agentId: string;
  /** argv of the job operation, with paths as the agent sees them. */
  command: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Per-job directory on the agent's file system, created by the driver (read-write in the sandbox). */
  workdir: string;
  /**
   * Files and directories of the agent the command needs (the Node runtime,
   * Outpost's code, the engine binary). A sandbox with its own file system
   * must show each read-only at the same path; the local driver needs nothing.
   */
  shared: readonly string[];
}

/** What a driver persists to find its sandbox again after an agent restart. */
export interface TaskHandle {
  version: 1;
  driver: string;
  jobId: string;
  agentId: string;
  workdir: string;
  /** Driver-specific identity: a pid, a container id, a pod name. */
  ref: string;
  startedAt: number;
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The sandbox was killed for exceeding its memory limit. */
  oomKilled: boolean;
}

export interface RunningTask {
  handle: TaskHandle;
  /**
   * The sandbox's stdout and stderr, interleaved as produced. From start(),
   * the output from then on; from recover(), the whole output again from its
   * first byte, the same bytes in the same order (the agent skips what the
   * control plane already holds).
   */
  output: Readable;
}

export interface DriverCapabilities {
  /**
   * Sandboxes outlive the agent process and recover() re-attaches to them
   * (output, exit): a restarted agent takes their jobs back instead of
   * removing them.
   */
  recover: boolean;
  /** The sandbox sees shared files read-only and nothing else of the agent's file system. */
  isolatesFiles: boolean;
  /** The sandbox reaches what the agent serves on 127.0.0.1 (its provider mirror). */
  sharesAgentLoopback: boolean;
}

export interface Driver {
  readonly name: string;
  capabilities(): DriverCapabilities;
  /** Whether the driver can run here, and why not. */
  fingerprint(): Promise<{ healthy: boolean; detail: string }>;
  start(spec: TaskSpec): Promise<RunningTask>;
  wait(handle: TaskHandle): Promise<ExitResult>;
  /** Delivers a signal to the operation process (not its children). */
  signal(handle: TaskHandle, signal: NodeJS.Signals): Promise<void>;
  /** SIGINT, then SIGKILL of the whole sandbox after `timeoutMs`. */
  stop(handle: TaskHandle, timeoutMs: number): Promise<void>;
  /** Removes everything the sandbox left (process group, work directory). */
  destroy(handle: TaskHandle): Promise<void>;
  inspect(handle: TaskHandle): Promise<{ running: boolean }>;
  /**
   * After an agent restart: re-attaches to the sandbox of a persisted handle,
   * running or exited but not yet destroyed, so that wait() gives its exit
   * and the output is read again from its first byte. Undefined when the
   * sandbox is gone (always, for a driver whose capabilities say it does not
   * recover); throws when it is there but cannot be followed.
   */
  recover(handle: TaskHandle): Promise<RunningTask | undefined>;
  /** Removes the sandboxes of this agent's data dir that no handle accounts for (a crash between create and persist); returns how many. */
  removeOrphans(known: ReadonlySet<string>): Promise<number>;
  /**
   * Jobs whose sandboxes on this machine exist but are not this agent's (yet):
   * a restarted agent keeps their directories. A Kubernetes worker's node
   * has job pods waiting for it, whose job directories are already mounted.
   */
  jobsInUseElsewhere?(): Promise<ReadonlySet<string>>;
  /** Memory the sandbox uses now, in bytes (undefined: not known); the memory guard watches it. */
  memoryUsage?(handle: TaskHandle): Promise<number | undefined>;
}
