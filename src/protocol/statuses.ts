// Status vocabularies shared by server, agent and CLI. Run statuses use the
// TFE API v2 names so TFE clients understand them unchanged.

export const runStatuses = [
  'pending',
  'plan_queued',
  'planning',
  'planned',
  'planned_and_finished',
  'apply_queued',
  'applying',
  'applied',
  'discarded',
  'errored',
  'canceled',
  'force_canceled',
] as const;
export type RunStatus = (typeof runStatuses)[number];

/** Statuses after which a run never changes again. */
export const finalRunStatuses: readonly RunStatus[] = [
  'planned_and_finished',
  'applied',
  'discarded',
  'errored',
  'canceled',
  'force_canceled',
];

export function isFinalRunStatus(status: RunStatus): boolean {
  return finalRunStatuses.includes(status);
}

/** A run ended well: what `outpost run` exits 0 on. */
export const successfulRunStatuses: readonly RunStatus[] = ['applied', 'planned_and_finished'];

export const jobKinds = ['plan', 'apply'] as const;
export type JobKind = (typeof jobKinds)[number];

export const jobStatuses = ['queued', 'leased', 'running', 'succeeded', 'failed', 'canceled', 'lost'] as const;
export type JobStatus = (typeof jobStatuses)[number];

export const finalJobStatuses: readonly JobStatus[] = ['succeeded', 'failed', 'canceled', 'lost'];

/** Statuses in which a job is its agent's: claimed (`leased`) or started (`running`), under a lease. */
export const activeJobStatuses: readonly JobStatus[] = ['leased', 'running'];

export function isActiveJobStatus(status: JobStatus): boolean {
  return activeJobStatuses.includes(status);
}

export const agentStatuses = ['idle', 'busy', 'draining', 'offline', 'errored'] as const;
export type AgentStatus = (typeof agentStatuses)[number];

export const engines = ['opentofu', 'terraform'] as const;

/** Where a workspace's runs execute: on its agent pool, or in the CLI that asks (only state and locking live in Outpost). */
export const executionModes = ['agent', 'local'] as const;
export type ExecutionMode = (typeof executionModes)[number];
export type Engine = (typeof engines)[number];

/** Exit codes of `outpost job`, read by the agent to tell a failure from a cancel. */
export const jobExitCodes = { succeeded: 0, failed: 1, canceled: 2 } as const;

/** What a pool's agents do: run jobs, or relay to version control providers only they can reach. */
export const poolKinds = ['runner', 'vcs'] as const;
export type PoolKind = (typeof poolKinds)[number];
