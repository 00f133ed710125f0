// The job operation from start to result: fetch the spec, run the job's
// steps in order (checking for a cancel before each), report the outcome to
// the control plane, and return the exit code the agent reads. Every failure
// ends up as a JobResult with a catalogue code, so the run shows its cause.
import type { Env } from '../config/settings.ts';
import type { JobResult } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { jobExitCodes } from '../protocol/statuses.ts';
import { CanceledError, type Cancellation } from './cancellation.ts';
import type { JobConfig } from './config.ts';
import type { JobApi } from './job-api.ts';
import { engineCommand, stepsFor } from './job-steps.ts';
import type { RunLog } from './run-log.ts';

export interface OperationContext {
  readonly config: JobConfig;
  readonly inherited: Env;
  readonly api: JobApi;
  readonly log: RunLog;
  readonly cancellation: Cancellation;
}

/** Runs the job and reports its result; returns the process exit code. */
export async function runJobOperation(context: OperationContext): Promise<number> {
  const result = await runSteps(context);
  const { api, log } = context;
  log.step(`reporting the result: ${result.outcome}`);
  try {
    await api.reportResult(result);
  } catch (error) {
    const failure = asOutpostError(error);
    log.error(`could not report the result to the control plane: ${failure.message}`, failure.code);
    // The control plane does not know the outcome: never let the agent take
    // the exit code for a success the run cannot show.
    return jobExitCodes.failed;
  }
  return jobExitCodes[result.outcome];
}

async function runSteps(context: OperationContext): Promise<JobResult> {
  const { api, log, cancellation } = context;
  try {
    cancellation.throwIfRequested();
    log.step('fetching job specification');
    const spec = await api.fetchSpec(cancellation.signal);
    log.maskSecrets(spec.variables.filter((variable) => variable.sensitive).map((variable) => variable.value));
    const destroy = spec.is_destroy ? ' (destroy)' : '';
    log.info(`${spec.kind} job${destroy} for workspace ${spec.workspace.name}, run ${spec.run_id}, ${engineCommand(spec)} ${spec.engine.version}`);

    const job = stepsFor({ ...context, spec });
    for (const step of job.steps) {
      if (step.skip?.()) continue;
      cancellation.throwIfRequested();
      log.step(step.title);
      await step.run();
    }
    // Every step ran: a cancel arriving now is too late to change anything
    // (an apply has already changed the infrastructure), so report what happened.
    return job.result();
  } catch (error) {
    if (error instanceof CanceledError) {
      log.info('the job was canceled');
      return { outcome: 'canceled' };
    }
    const failure = asOutpostError(error);
    if (failure.code === 'engine_failed') {
      // The engine's own error is already in the log just above.
      log.info(failure.message);
    } else {
      log.error(failure.message, failure.code);
    }
    return { outcome: 'failed', error: { code: failure.code, message: failure.message.slice(0, 4000) } };
  }
}

export function asOutpostError(error: unknown): OutpostError {
  if (error instanceof OutpostError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new OutpostError('internal', message);
}
