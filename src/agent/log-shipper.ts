// Ships a job's output to the control plane as append-only chunks with byte
// offsets. A chunk is dropped from the buffer only once the server confirmed
// the size that includes it, so retries after a timeout or a server restart
// neither lose nor duplicate bytes (the server ignores bytes it already has).
//
// Latency and throughput: output goes out as soon as it is written when no
// request is in flight (at most one request per 25 ms), and what arrives
// meanwhile goes in the next request, sent as soon as the previous one is
// confirmed: a line reaches the server within about a round trip, and a
// chatty job makes few, larger requests. A failed
// send is retried with jittered exponential backoff (up to 10 s), so a server
// that is down is not hammered. Memory: the backlog held in memory is
// bounded; beyond it output spills to a file next to the job's directory and
// is read back in order (log-spill.ts). Only output beyond the spill file's
// bound is dropped: its beginning and most recent end are kept, with a line
// in the log saying how much was dropped between.
import type { Logger } from 'pino';
import { backoff } from '../protocol/backoff.ts';
import { ByteQueue } from './byte-queue.ts';
import { AuthError, ProtocolError, type ControlPlaneClient } from './control-plane-client.ts';
import { LogSpill } from './log-spill.ts';

/** Safety net: anything a nudge missed goes out within this. Also the first retry delay. */
const flushIntervalMs = 200;
/** Least time between two sends, so a job printing line by line does not make a request per line. */
const minSendGapMs = 25;
const maxChunkBytes = 1024 * 1024;
/** A backlog at least this large is sent without waiting for the next tick. */
const backlogBytes = 64 * 1024;
/** Backlog held in memory before output spills to disk (or, without a spill file, before the middle is dropped). */
const memoryLimitBytes = 32 * 1024 * 1024;
/** The spill file's bound: the server's default OUTPOST_MAX_LOG_MB, beyond which it would refuse the log anyway. */
const spillLimitBytes = 512 * 1024 * 1024;
/** Most recent output kept once the spill file (or memory) is full. */
const tailLimitBytes = 32 * 1024 * 1024;
/** What close() keeps of a backlog it cannot ship in time: the end, where the error usually is. */
const closingTailBytes = 256 * 1024;
/** How long close() gives a job's log, by default, of a control plane that answers: ample for the 32 MiB held in memory. */
const closeTimeoutMs = 60_000;
/** How long close() waits for a control plane that cannot be reached, on top of its own timeout. */
export const logOutageBudgetMs = 15 * 60_000;
/** A failed send is retried from the flush interval on, doubling to 10 s. */
const retryBackoff = { baseMs: flushIntervalMs, maxMs: 10_000 } as const;

function droppedLine(bytes: number): Buffer {
  return Buffer.from(`\n[outpost agent] ${bytes} bytes of output were dropped here: the job wrote faster than the control plane accepted its log\n`);
}

export class LogShipper {
  readonly #client: ControlPlaneClient;
  readonly #session: string;
  readonly #jobId: string;
  readonly #leaseId: string;
  readonly #logger: Logger;
  readonly #memoryLimit: number;
  /** Bytes to ship next, in order; the first ones may be in flight. */
  readonly #pending = new ByteQueue();
  /** Output that did not fit #pending, shipped after it. */
  readonly #spill: LogSpill | undefined;
  #spillNoted = false;
  /** While the spill (or memory) overflows: the most recent output, shipped after a marker once the rest is sent. */
  #tail: ByteQueue | undefined;
  #droppedBytes = 0;
  /** Offset of the first pending byte (= bytes the server has confirmed). */
  #offset: number;
  /** The last request was answered, so the server holds exactly #offset bytes. */
  #inSync = true;
  /** Sends failed in a row, and when the next may go out. */
  #failures = 0;
  #retryAt = 0;
  #inFlight: Promise<void> | undefined;
  /** Closing: send whatever is left, however small, until this time (then close() looks again). */
  #closingUntil: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** A send scheduled for the end of the minimum gap. */
  #soon: NodeJS.Timeout | undefined;
  #lastSendAt = 0;
  #dead = false;

  /** Told how many more bytes the server confirmed, after each confirmation (the agent's metrics). */
  readonly #onDelivered: ((bytes: number) => void) | undefined;

  constructor(options: {
    client: ControlPlaneClient;
    session: string;
    jobId: string;
    leaseId: string;
    startOffset: number;
    logger: Logger;
    onDelivered?: ((bytes: number) => void) | undefined;
    /** Where output beyond the memory bound goes; without it, that output is dropped (head and tail kept). */
    spillFile?: string | undefined;
    spillLimitBytes?: number;
    memoryLimitBytes?: number;
  }) {
    this.#onDelivered = options.onDelivered;
    this.#client = options.client;
    this.#session = options.session;
    this.#jobId = options.jobId;
    this.#leaseId = options.leaseId;
    this.#offset = options.startOffset;
    // The logger already names the job (the job runner's child logger).
    this.#logger = options.logger;
    this.#memoryLimit = options.memoryLimitBytes ?? memoryLimitBytes;
    if (options.spillFile !== undefined) this.#spill = new LogSpill(options.spillFile, options.spillLimitBytes ?? spillLimitBytes);
    this.#timer = setInterval(() => void this.#flush(), flushIntervalMs);
    this.#timer.unref();
  }

  /** Bytes written so far and not dropped, confirmed or not. */
  get size(): number {
    return this.#offset + this.#undelivered();
  }

  /** Bytes held in memory. */
  get buffered(): number {
    return this.#pending.bytes + (this.#tail?.bytes ?? 0);
  }

  /** Bytes waiting in the spill file. */
  get spilled(): number {
    return this.#spill?.bytes ?? 0;
  }

  write(data: Buffer | string): void {
    if (this.#dead) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length === 0) return;
    if (!this.#tail && this.spilled === 0 && this.#pending.bytes + bytes.length <= this.#memoryLimit) {
      this.#pending.push(bytes);
    } else if (!this.#tail && this.#spill?.append(bytes)) {
      if (!this.#spillNoted) {
        this.#spillNoted = true;
        this.#logger.warn({ memoryBytes: this.#pending.bytes }, 'the job log backlog outgrew memory; spilling it to disk until the control plane takes it');
      }
    } else {
      this.#tail ??= new ByteQueue();
      this.#tail.push(bytes);
      const excess = this.#tail.bytes - tailLimitBytes;
      if (excess > 0) {
        this.#tail.drop(excess);
        this.#droppedBytes += excess;
      }
    }
    // A backlog goes out at once, unless the last send failed: then the
    // backoff decides, so a server that is down is not hammered.
    if (this.#pending.bytes >= backlogBytes && this.#inSync) void this.#flush();
    else this.#nudge();
  }

  /** Sends soon: now if the last send was long enough ago, else at the end of the gap. */
  #nudge(): void {
    // While closing, close() paces the sends itself (and may trim between them).
    if (!this.#inSync || this.#inFlight || this.#soon || this.#dead || this.#closingUntil !== undefined) return;
    const wait = this.#lastSendAt + minSendGapMs - Date.now();
    if (wait <= 0) {
      void this.#flush();
      return;
    }
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.#flush();
    }, wait);
    this.#soon.unref();
  }

  line(text: string): void {
    this.write(`${text}\n`);
  }

  /**
   * Sends everything still buffered; gives up after `timeoutMs` of a server
   * that answers. Time the server cannot be reached does not count, up to
   * `outageMs` more: a job that ends during an outage still gets its whole
   * log once the server is back. Short closes (a job given up on) do not wait out an outage.
   */
  async close(timeoutMs = closeTimeoutMs, outageMs = timeoutMs < closeTimeoutMs ? 0 : logOutageBudgetMs): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#soon = undefined;
    const started = Date.now();
    let paused = 0;
    let trimmed = false;
    for (;;) {
      if (this.#dead || this.#undelivered() === 0) break;
      const now = Date.now();
      const active = now - started - paused;
      if (active >= timeoutMs) break;
      // Half the time gone and much left: the end of the output (where the
      // error usually is) matters more than its middle.
      if (!trimmed && this.#inSync && !this.#inFlight && active > timeoutMs / 2 && this.#undelivered() > closingTailBytes) {
        trimmed = true;
        this.#keepOnlyTail(closingTailBytes);
      }
      // A send under way (started by a write or a tick) obeys this too.
      this.#closingUntil = now + (trimmed ? timeoutMs - active : Math.max(0, timeoutMs / 2 - active));
      const unreachable = !this.#inSync;
      await this.#flush();
      if (this.#undelivered() > 0) await new Promise((resolve) => setTimeout(resolve, flushIntervalMs));
      if (unreachable && !this.#inSync && paused < outageMs) paused = Math.min(outageMs, paused + (Date.now() - now));
    }
    await this.#inFlight;
    if (this.#undelivered() > 0 && !this.#dead) {
      this.#logger.error({ bytes: this.#undelivered() }, 'could not deliver the end of the job log');
    }
    this.#spill?.remove();
  }

  #undelivered(): number {
    return this.#pending.bytes + this.spilled + (this.#tail?.bytes ?? 0);
  }

  /** Replaces the backlog by a marker and its last `keep` bytes (only when nothing is in flight). */
  #keepOnlyTail(keep: number): void {
    let drop = this.#undelivered() - keep;
    const dropped = drop;
    // In order: memory first, then the spill file, then the most recent output.
    const fromPending = Math.min(drop, this.#pending.bytes);
    this.#pending.drop(fromPending);
    drop -= fromPending;
    const fromSpill = Math.min(drop, this.spilled);
    this.#spill?.skip(fromSpill);
    drop -= fromSpill;
    this.#tail?.drop(drop);
    const rest = this.#pending.takeAll();
    this.#pending.push(droppedLine(this.#droppedBytes + dropped));
    this.#droppedBytes = 0;
    for (const part of rest) this.#pending.push(part);
  }

  /** Starts sending unless a send is under way or the backoff says wait; it goes on while a backlog remains. */
  #flush(): Promise<void> {
    if (this.#inFlight || this.#dead || this.#undelivered() === 0 || Date.now() < this.#retryAt) return this.#inFlight ?? Promise.resolve();
    this.#inFlight = this.#drain().finally(() => {
      this.#inFlight = undefined;
      // Output that arrived during the last request goes out next.
      if (this.#pending.bytes > 0) this.#nudge();
    });
    return this.#inFlight;
  }

  async #drain(): Promise<void> {
    do {
      this.#refill();
      if (this.#pending.bytes === 0 && this.spilled === 0 && this.#tail) {
        // Everything before is confirmed: the marker and the recent output follow it.
        if (this.#droppedBytes > 0) this.#pending.push(droppedLine(this.#droppedBytes));
        for (const part of this.#tail.takeAll()) this.#pending.push(part);
        this.#tail = undefined;
        this.#droppedBytes = 0;
      }
      if (!(await this.#send())) return;
      if (this.#closingUntil !== undefined && Date.now() >= this.#closingUntil) return;
    } while (!this.#dead && (this.#pending.bytes >= backlogBytes || this.spilled > 0 || this.#tail || (this.#closingUntil !== undefined && this.#pending.bytes > 0)));
  }

  /** Moves the front of the spill file into memory once the memory backlog runs low. */
  #refill(): void {
    if (!this.#spill || this.spilled === 0 || this.#pending.bytes >= maxChunkBytes) return;
    try {
      this.#pending.push(this.#spill.take(Math.max(maxChunkBytes, this.#memoryLimit - this.#pending.bytes)));
    } catch (error) {
      this.#droppedBytes += this.spilled;
      this.#spill.discard();
      this.#logger.error({ err: (error as Error).message }, 'could not read back the spilled job log; that part is dropped');
      if (!this.#tail) this.#tail = new ByteQueue();
    }
  }

  /** One request; whether it was answered. */
  async #send(): Promise<boolean> {
    // Writes may arrive while this request is in flight: they join the queue
    // behind the chunk, which leaves it only once confirmed.
    const chunk = this.#pending.peek(maxChunkBytes);
    this.#lastSendAt = Date.now();
    try {
      const size = await this.#client.appendLog(this.#session, this.#jobId, this.#leaseId, this.#offset, chunk);
      const confirmed = Math.max(0, Math.min(size - this.#offset, this.#pending.bytes));
      this.#pending.drop(confirmed);
      this.#offset += confirmed;
      if (confirmed > 0) this.#onDelivered?.(confirmed);
      this.#inSync = true;
      this.#failures = 0;
      this.#retryAt = 0;
      return true;
    } catch (error) {
      this.#inSync = false;
      if (error instanceof ProtocolError && error.code === 'log_offset_gap' && typeof error.meta.size === 'number') {
        // The server has fewer bytes than we believed confirmed: nothing we can
        // resend, so report the gap loudly and continue from the server's size.
        this.#logger.error({ expected: this.#offset, server: error.meta.size }, 'server log is shorter than confirmed; continuing');
        this.#offset = error.meta.size;
        return false;
      }
      if (error instanceof AuthError || (error instanceof ProtocolError && error.status < 500 && error.status !== 429)) {
        this.#dead = true;
        this.#logger.warn({ err: error.message }, 'log shipping stopped');
        return false;
      }
      // The client says once per outage that the server cannot be reached.
      this.#failures++;
      const delay = backoff(this.#failures - 1, retryBackoff);
      this.#retryAt = Date.now() + delay;
      this.#logger.debug({ err: (error as Error).message, retryInMs: Math.round(delay) }, 'log chunk not delivered; will retry');
      return false;
    }
  }
}
