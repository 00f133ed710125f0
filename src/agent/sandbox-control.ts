// What a job runner does to its sandbox when something stops the job:
// interrupt it once (the operation forwards exactly one SIGINT to the
// engine, which stops at a safe point and saves state; a second one would
// make OpenTofu abort without saving), and kill the whole sandbox, now or a
// grace period after that interrupt. Asked while the sandbox is still being
// created, it acts as soon as the sandbox exists; once it has exited, there
// is nothing left to act on.
import type { Logger } from 'pino';
import type { Driver, TaskHandle } from './drivers/driver.ts';

export class SandboxControl {
  readonly #driver: Driver;
  readonly #logger: Logger;
  #handle: TaskHandle | undefined;
  readonly #waiting: ((handle: TaskHandle) => Promise<void>)[] = [];
  #interruptedAt: number | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  #exited = false;

  constructor(driver: Driver, logger: Logger) {
    this.#driver = driver;
    this.#logger = logger;
  }

  get hasExited(): boolean {
    return this.#exited;
  }

  /**
   * The sandbox exists: what was asked meanwhile is done now. `interrupted`:
   * it already had its one interrupt (from the agent process that ran it
   * before a restart).
   */
  attach(handle: TaskHandle, interrupted = false): void {
    this.#handle = handle;
    if (interrupted) this.#interruptedAt ??= Date.now();
    for (const act of this.#waiting.splice(0)) void act(handle);
  }

  /** Runs `act` now if the sandbox runs, or as soon as it exists; never after it exited. */
  async whenRunning(act: (handle: TaskHandle) => Promise<void>): Promise<void> {
    if (this.#exited) return;
    if (this.#handle) await act(this.#handle);
    else this.#waiting.push(act);
  }

  /** Nothing is left to interrupt or kill; a kill still scheduled is dropped. */
  exited(): void {
    this.#exited = true;
    clearTimeout(this.#killTimer);
  }

  /** The one SIGINT to the operation (which forwards one to the engine); never a second. */
  async interrupt(handle: TaskHandle, why: string): Promise<void> {
    if (this.#interruptedAt !== undefined) return;
    this.#interruptedAt = Date.now();
    this.#logger.info({ action: why }, 'interrupting the job');
    await this.#driver.signal(handle, 'SIGINT');
  }

  /**
   * Kills the sandbox `graceMs` after its interrupt, so the engine may stop
   * its own processes first; a kill already scheduled stands. Returns when
   * the kill comes, or undefined if one was scheduled already.
   */
  killAfterInterrupt(handle: TaskHandle, graceMs: number): number | undefined {
    if (this.#killTimer !== undefined) return undefined;
    const remaining = Math.max(0, graceMs - (Date.now() - (this.#interruptedAt ?? Date.now())));
    this.#scheduleKill(handle, remaining);
    return remaining;
  }

  /** Kills the sandbox now, whatever was scheduled. */
  killNow(handle: TaskHandle): void {
    this.#scheduleKill(handle, 0);
  }

  #scheduleKill(handle: TaskHandle, ms: number): void {
    clearTimeout(this.#killTimer);
    this.#killTimer = setTimeout(() => void this.#driver.stop(handle, 0), ms);
  }
}
