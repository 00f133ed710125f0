// What an agent's jobs share and how the agent follows them: the agent's
// dependencies, and the part the agent may play in a larger deployment. The
// Kubernetes controller claims jobs but hands each to a pod (its runner only
// creates the pod and waits until the worker of its node takes it over); the
// Kubernetes worker claims nothing and runs the jobs of the pods placed on its node.
import type { Logger } from 'pino';
import type { JobAssignment, SignalAction } from '../protocol/agent-api.ts';
import type { JobKind } from '../protocol/statuses.ts';
import type { AgentMetrics } from './agent-metrics.ts';
import type { AgentConfig } from './config.ts';
import type { ControlPlaneClient } from './control-plane-client.ts';
import type { Driver } from './drivers/driver.ts';
import type { EngineCache } from './engines/engine-cache.ts';
import type { JobEnd } from './job-end.ts';
import type { JobMemoryLimit } from './memory-limit.ts';
import type { PlanWorkdirs } from './plan-workdirs.ts';
import type { ProviderMirror } from './providers/provider-mirror.ts';
import type { StopAction } from './shutdown-config.ts';
import type { TaskHandleStore } from './task-handles.ts';

/** What the agent process shares with every job it runs. */
export interface AgentDeps {
  config: AgentConfig;
  client: ControlPlaneClient;
  driver: Driver;
  engines: EngineCache;
  logger: Logger;
  baseEnv: Readonly<Record<string, string>>;
  handles: TaskHandleStore;
  /** The provider cache's mirror; absent when the cache is off. */
  providers?: ProviderMirror | undefined;
  /** The per-job limit the memory guard measures against; absent when the guard is off. */
  memoryLimit?: JobMemoryLimit | undefined;
  /** Prometheus metrics; absent when the health listener is off (OUTPOST_AGENT_HEALTH_PORT=0). */
  metrics?: AgentMetrics | undefined;
  /** Plan jobs' directories kept for their runs' applies; absent when that is off. */
  planWorkdirs?: PlanWorkdirs | undefined;
  /** The part the agent plays in a Kubernetes deployment; absent for a plain agent. */
  role?: AgentRole | undefined;
}

export interface JobRunnerDeps extends AgentDeps {
  agentId: string;
  session: () => string;
}

/** The job a runner runs, as the agent lists it to the control plane. */
export interface RunnerJob {
  readonly job_id: string;
  readonly lease_id: string;
  readonly run_id: string;
  readonly kind: JobKind;
}

/** One job the agent follows until it ends, as the agent sees it. */
export interface Runner {
  readonly job: RunnerJob;
  run(): Promise<JobEnd>;
  signal(action: SignalAction): Promise<void>;
  stopForAgent(action: StopAction, reason: string): Promise<void>;
  abandon(): Promise<void>;
}

export interface AgentRole {
  /** Whether the agent asks the queue for work (a worker does not: its jobs come from pods on its node). */
  readonly claims: boolean;
  /** The runner of a claimed job, in place of the agent's own JobRunner. */
  runnerFor?(assignment: JobAssignment, deps: JobRunnerDeps): Runner;
  /** A job the agent's previous process ran and this one took back, before start(): the role may keep track of it (for a cordon). */
  recovered?(runner: Runner): Runner;
  /** Starts finding jobs besides claims, once the agent is registered; `follow` runs each. */
  start?(deps: JobRunnerDeps, follow: (runner: Runner) => void): Promise<void>;
  /** Why the agent reports itself draining though it is not stopping (its node is cordoned), if it is. */
  draining?(): boolean;
  /** The agent is stopping: stop finding jobs. */
  stop?(): Promise<void>;
}
