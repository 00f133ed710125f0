// Wire schemas of the agent protocol (/api/agent/v1), shared by the server,
// the agent and the job operation. docs/protocol.md describes the exchange;
// this file is its source of truth. Adding optional fields is compatible;
// removing or renaming one needs a new protocol version.
import { z } from 'zod';
import { isErrorCode, type ErrorCode } from './errors.ts';
import { engines, jobKinds, poolKinds } from './statuses.ts';

export const agentApiPrefix = '/api/agent/v1';
export const protocolVersion = 1;

export const agentPaths = {
  register: `${agentApiPrefix}/register`,
  deregister: `${agentApiPrefix}/deregister`,
  poll: `${agentApiPrefix}/poll`,
  heartbeat: `${agentApiPrefix}/heartbeat`,
  jobStart: (jobId: string) => `${agentApiPrefix}/jobs/${jobId}/start`,
  jobLogs: (jobId: string) => `${agentApiPrefix}/jobs/${jobId}/logs`,
  jobFinish: (jobId: string) => `${agentApiPrefix}/jobs/${jobId}/finish`,
  jobLost: (jobId: string) => `${agentApiPrefix}/jobs/${jobId}/lost`,
  jobAdopt: (jobId: string) => `${agentApiPrefix}/jobs/${jobId}/adopt`,
  // Authenticated with the job token, used by the job operation in its sandbox.
  jobSpec: `${agentApiPrefix}/job`,
  jobConfiguration: `${agentApiPrefix}/job/configuration`,
  jobPlan: `${agentApiPrefix}/job/plan`,
  jobPlanJson: `${agentApiPrefix}/job/plan-json`,
  jobResult: `${agentApiPrefix}/job/result`,
  jobState: `${agentApiPrefix}/job/state`,
  jobStateLock: `${agentApiPrefix}/job/state/lock`,
} as const;

export const registerRequest = z.object({
  name: z.string().min(1).max(128),
  version: z.string().max(64),
  driver: z.string().max(32),
  concurrency: z.number().int().min(1).max(1024),
  single: z.boolean().default(false),
});
export type RegisterRequest = z.infer<typeof registerRequest>;

export const registerResponse = z.object({
  agent_id: z.string(),
  pool_id: z.string(),
  session_token: z.string(),
  heartbeat_interval_ms: z.number().int(),
  lease_timeout_ms: z.number().int(),
  poll_timeout_ms: z.number().int(),
  /** `vcs`: the agent relays version control work (vcs-api.ts) instead of running jobs. Absent from servers before VCS pools. */
  pool_kind: z.enum(poolKinds).default('runner'),
});
export type RegisterResponse = z.infer<typeof registerResponse>;

export const runningJob = z.object({ job_id: z.string(), lease_id: z.string() });
export type RunningJob = z.infer<typeof runningJob>;

export const signalAction = z.enum(['cancel', 'force_cancel']);
export type SignalAction = z.infer<typeof signalAction>;

export const jobSignal = z.object({ job_id: z.string(), action: signalAction });
export type JobSignal = z.infer<typeof jobSignal>;

export const engineRef = z.object({ name: z.enum(engines), version: z.string() });
export type EngineRef = z.infer<typeof engineRef>;

export const jobAssignment = z.object({
  job_id: z.string(),
  lease_id: z.string(),
  run_id: z.string(),
  kind: z.enum(jobKinds),
  job_token: z.string(),
  engine: engineRef,
  /** Bytes of this run phase's log already stored (a retried plan continues the log). */
  log_offset: z.number().int().min(0),
});
export type JobAssignment = z.infer<typeof jobAssignment>;

/**
 * A job another agent of the pool holds, taken over by the caller
 * (POST jobs/:id/adopt with the current lease id): the Kubernetes worker on
 * the node where a controller's job pod was scheduled, or a controller that
 * restarted. The lease moves to the caller under a new id, so the previous
 * holder is fenced out; the job token stays (the sandbox has it already).
 */
export const jobAdoption = jobAssignment.omit({ job_token: true }).extend({ started: z.boolean() });
export type JobAdoption = z.infer<typeof jobAdoption>;

export const pollRequest = z.object({
  free_slots: z.number().int().min(0).max(1024),
  running: z.array(runningJob).max(1024).default([]),
  /** How long the server may hold the request open; defaults to poll_timeout_ms. */
  wait_ms: z.number().int().min(0).max(60_000).optional(),
  /** Claim this job only (a single-run agent started for it); others of the pool stay queued. */
  job_id: z.string().regex(/^job-[A-Za-z0-9_-]{1,64}$/, 'a job id (job-…)').optional(),
});
export type PollRequest = z.infer<typeof pollRequest>;

export const pollResponse = z.object({
  jobs: z.array(jobAssignment),
  signals: z.array(jobSignal),
  /** To an agent polling for one job (job_id): why it will never get it. It exits instead of idling. */
  job_gone: z.string().optional(),
});
export type PollResponse = z.infer<typeof pollResponse>;

export const heartbeatRequest = z.object({
  status: z.enum(['idle', 'busy', 'draining']),
  running: z.array(runningJob).max(1024),
});
export type HeartbeatRequest = z.infer<typeof heartbeatRequest>;

export const heartbeatResponse = z.object({
  signals: z.array(jobSignal),
  /** Jobs the agent reported whose lease is no longer current: stop them. */
  stale: z.array(z.string()),
});
export type HeartbeatResponse = z.infer<typeof heartbeatResponse>;

export const leaseBody = z.object({ lease_id: z.string() });

export const logAppendResponse = z.object({ size: z.number().int() });
export type LogAppendResponse = z.infer<typeof logAppendResponse>;

/**
 * An error code of the catalogue (src/protocol/errors.ts) on the wire. A
 * peer one minor version newer may send a code this version does not know:
 * it reads as `internal` instead of failing the whole message.
 */
export const wireErrorCode = z
  .string()
  .max(64)
  .transform((code): ErrorCode => (isErrorCode(code) ? code : 'internal'));

/** A job's error: a code of the catalogue and a sentence. An unknown code is kept at the start of the message. */
export const jobErrorInfo = z
  .object({ code: z.string().max(64), message: z.string().max(4000) })
  .transform(({ code, message }): { code: ErrorCode; message: string } => (isErrorCode(code) ? { code, message } : { code: 'internal', message: `[${code}] ${message}` }));
export type JobErrorInfo = z.infer<typeof jobErrorInfo>;

export const jobFinishRequest = z.object({
  lease_id: z.string(),
  status: z.enum(['succeeded', 'failed', 'canceled']),
  error: jobErrorInfo.optional(),
});
export type JobFinishRequest = z.infer<typeof jobFinishRequest>;

export const jobVariable = z.object({
  key: z.string(),
  value: z.string(),
  category: z.enum(['terraform', 'env']),
  hcl: z.boolean(),
  sensitive: z.boolean(),
});
export type JobVariable = z.infer<typeof jobVariable>;

/**
 * The engine's plan options a run asks for (TFE's run attributes, which the
 * `tofu` CLI sends for `-refresh=false`, `-refresh-only`, `-target` and
 * `-replace`). Absent: a full plan that refreshes.
 */
export const planOptions = z.object({
  refresh: z.boolean().default(true),
  refresh_only: z.boolean().default(false),
  targets: z.array(z.string()).default([]),
  replace: z.array(z.string()).default([]),
});
export type PlanOptions = z.infer<typeof planOptions>;

/** What the job operation learns about its job, fetched with the job token. */
export const jobSpec = z.object({
  job_id: z.string(),
  run_id: z.string(),
  kind: z.enum(jobKinds),
  is_destroy: z.boolean(),
  /** Plan-only runs must not lock the state (`plan -lock=false`). */
  plan_only: z.boolean().default(false),
  plan_options: planOptions.optional(),
  workspace: z.object({ id: z.string(), name: z.string(), working_directory: z.string() }),
  engine: engineRef,
  variables: z.array(jobVariable),
});
export type JobSpec = z.infer<typeof jobSpec>;

/**
 * What the operation reports before it exits. A failed operation reports its
 * error here so the run shows the cause, not just an exit code.
 */
export const jobResult = z.object({
  outcome: z.enum(['succeeded', 'failed', 'canceled']),
  has_changes: z.boolean().optional(),
  resource_additions: z.number().int().min(0).optional(),
  resource_changes: z.number().int().min(0).optional(),
  resource_destructions: z.number().int().min(0).optional(),
  error: jobErrorInfo.optional(),
});
export type JobResult = z.infer<typeof jobResult>;

/** The error document every endpoint returns (JSON:API error object). */
export const errorDocument = z.object({
  errors: z.array(
    z.object({
      status: z.string(),
      code: wireErrorCode,
      title: z.string(),
      detail: z.string().optional(),
      meta: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
});
export type ErrorDocument = z.infer<typeof errorDocument>;
