// The memory guard: watches a running job's memory and, at the soft limit
// (a share of the job's memory limit, memory-limit.ts), interrupts it once
// the way a cancel does, so the engine stops at a safe point and saves its
// state instead of being killed for memory mid-write. Below that, a warning
// threshold only writes to the run log. The job then fails with
// `memory_limit` (not `canceled`: nobody canceled the run).
import type { Logger } from 'pino';
import type { JobErrorInfo } from '../protocol/agent-api.ts';
import type { AgentConfig } from './config.ts';
import type { Driver, ExitResult, TaskHandle } from './drivers/driver.ts';
import { memoryLimitFailure, type Outcome } from './job-end.ts';
import type { JobMemoryLimit } from './memory-limit.ts';

export interface MemoryThresholds {
  limitBytes: number;
  /** Percent of the limit at which the job is interrupted. */
  softLimitPercent: number;
  /** Percent of the soft limit from which a warning is written. */
  warnPercent: number;
}

export type MemoryDecision = 'none' | 'warn' | 'interrupt';

/** What one measurement calls for, given what was already done (each action happens at most once). */
export function decide(usedBytes: number, thresholds: MemoryThresholds, done: { warned: boolean; interrupted: boolean }): MemoryDecision {
  if (done.interrupted) return 'none';
  const soft = softLimitBytes(thresholds);
  if (usedBytes >= soft) return 'interrupt';
  if (!done.warned && thresholds.warnPercent < 100 && usedBytes >= (soft * thresholds.warnPercent) / 100) return 'warn';
  return 'none';
}

function softLimitBytes(thresholds: MemoryThresholds): number {
  return (thresholds.limitBytes * thresholds.softLimitPercent) / 100;
}

const mib = (bytes: number): number => Math.round(bytes / (1024 * 1024));

export interface MemoryGuardOptions extends MemoryThresholds {
  intervalMs: number;
  /** Bytes the job uses now; undefined or a throw: not known this time. */
  usage: () => Promise<number | undefined>;
  /** Writes a line into the run log. */
  log: (line: string) => void;
  /** Interrupts the job as a cancel does (JobRunner: one SIGINT, never a second); `limitError` is how it fails unless it succeeds anyway. */
  interrupt: (limitError: JobErrorInfo) => Promise<void>;
  logger: Logger;
}

export class MemoryGuard {
  readonly #options: MemoryGuardOptions;
  #warned = false;
  #interruptedAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: MemoryGuardOptions) {
    this.#options = options;
  }

  /** The guard interrupted the job. */
  get tripped(): boolean {
    return this.#interruptedAt !== undefined;
  }

  start(): this {
    this.#schedule();
    return this;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** One measurement and what it calls for. */
  async check(): Promise<MemoryDecision> {
    const options = this.#options;
    let used: number | undefined;
    try {
      used = await options.usage();
    } catch (error) {
      options.logger.debug({ err: (error as Error).message }, 'memory guard: could not measure the job');
    }
    if (used === undefined || this.#stopped) return 'none';
    options.logger.debug({ usedMb: mib(used) }, 'memory guard: measured the job');
    const decision = decide(used, options, { warned: this.#warned, interrupted: this.tripped });
    const limit = `${mib(used)} MiB of its ${mib(options.limitBytes)} MiB memory limit`;
    if (decision === 'warn') {
      this.#warned = true;
      options.log(`Outpost agent: warning: the job uses ${limit}; at the soft limit (${options.softLimitPercent} %, ${mib(softLimitBytes(options))} MiB) it is interrupted`);
      options.logger.warn({ usedMb: mib(used) }, 'memory guard: the job nears its soft limit');
    } else if (decision === 'interrupt') {
      this.#interruptedAt = used;
      options.log(`Outpost agent: the job uses ${limit} (soft limit ${options.softLimitPercent} %): interrupting it so the engine can stop at a safe point and save state`);
      options.logger.warn({ usedMb: mib(used) }, 'memory guard: soft limit reached, interrupting the job');
      await options.interrupt(this.#limitError());
    }
    return decision;
  }

  /**
   * How the job's end is reported if the guard interrupted it and it did not
   * succeed: failed for memory, not canceled. A kernel kill for memory that
   * came anyway (the engine went on allocating) is reported as that.
   */
  failure(outcome: Outcome, exit: ExitResult): JobErrorInfo | undefined {
    return this.tripped ? memoryLimitFailure(outcome, exit, this.#limitError()) : undefined;
  }

  #limitError(): JobErrorInfo {
    const { limitBytes, softLimitPercent } = this.#options;
    return {
      code: 'memory_limit',
      message:
        `the job reached its memory soft limit (${softLimitPercent} % of ${mib(limitBytes)} MiB; it used ${mib(this.#interruptedAt ?? 0)} MiB) and was interrupted so the engine could stop at a safe point; the state the engine saved is kept. ` +
        'Raise the limit (OUTPOST_AGENT_MEMORY_LIMIT_MB, or the container\'s) or reduce the configuration\'s memory use',
    };
  }

  #schedule(): void {
    if (this.#stopped || this.tripped) return;
    this.#timer = setTimeout(() => void this.check().finally(() => this.#schedule()), this.#options.intervalMs);
    this.#timer.unref();
  }
}

/** A started guard for a job's sandbox, or undefined when there is no limit or the driver cannot measure. */
export function startMemoryGuard(
  deps: { config: AgentConfig; driver: Driver; logger: Logger; memoryLimit?: JobMemoryLimit | undefined },
  handle: TaskHandle,
  log: (line: string) => void,
  interrupt: (limitError: JobErrorInfo) => Promise<void>,
): MemoryGuard | undefined {
  const { config, driver, memoryLimit } = deps;
  if (memoryLimit === undefined || driver.memoryUsage === undefined) return undefined;
  return new MemoryGuard({
    limitBytes: memoryLimit.bytes,
    softLimitPercent: config.memoryMonitorSoftLimitPercent,
    warnPercent: config.memoryMonitorWarnPercent,
    intervalMs: config.memoryMonitorInterval,
    usage: () => driver.memoryUsage!(handle),
    log,
    interrupt,
    logger: deps.logger,
  }).start();
}
