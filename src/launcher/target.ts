// Where `outpost launcher` starts the agent for a delivered job. Both
// targets name what they start after the delivery id, so a delivery that
// arrives twice (the control plane did not see the first answer) finds the
// agent already started instead of starting a second.
import { createHash } from 'node:crypto';

export interface LaunchRequest {
  readonly deliveryId: string;
  readonly jobId: string;
  readonly poolId: string;
  readonly runId: string | undefined;
  readonly workspace: string | undefined;
}

export interface Launched {
  /** The container id or the Job name. */
  readonly id: string;
  /** An agent had already been started for this delivery. */
  readonly duplicate: boolean;
}

export interface LaunchTarget {
  readonly kind: 'docker' | 'kubernetes';
  /** Agents this launcher started that have not ended. */
  running(): Promise<number>;
  launch(request: LaunchRequest): Promise<Launched>;
}

/** A failure to start an agent, in words an operator can act on. */
export class LaunchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LaunchError';
  }
}

/** A name for the agent of a delivery: lowercase, valid for Docker and Kubernetes, the same on every retry. */
export function agentNameFor(deliveryId: string): string {
  return `outpost-agent-${createHash('sha256').update(deliveryId).digest('hex').slice(0, 20)}`;
}

/** The environment every single-run agent gets, besides its token. */
export function agentEnvironment(request: LaunchRequest, extra: Readonly<Record<string, string>>): Record<string, string> {
  return {
    ...extra,
    OUTPOST_AGENT_SINGLE: 'true',
    OUTPOST_AGENT_DRIVER: 'local',
    OUTPOST_AGENT_JOB_ID: request.jobId,
    OUTPOST_AGENT_NAME: agentNameFor(request.deliveryId),
    OUTPOST_WEBHOOK_DELIVERY: request.deliveryId,
  };
}

/** Labels (Docker) and labels (Kubernetes) on what the launcher starts: what it was for, and that the launcher owns it. */
export function launchLabels(request: LaunchRequest): Record<string, string> {
  return {
    'app.kubernetes.io/managed-by': 'outpost-launcher',
    'outpost.dev/delivery': request.deliveryId,
    'outpost.dev/job': request.jobId,
    'outpost.dev/pool': request.poolId,
    ...(request.runId ? { 'outpost.dev/run': request.runId } : {}),
  };
}
