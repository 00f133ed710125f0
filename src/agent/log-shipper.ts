// Ships a job's output to the control plane as append-only chunks with byte
// offsets. A chunk is dropped from the buffer only once the server confirmed
// the size that includes it, so retries after a timeout or a server restart
// neither lose nor duplicate bytes (the server ignores bytes it already has).
//
// Throughput: while a backlog exists the next chunk goes out as soon as the
// previous one is confirmed; small output is flushed every 200 ms. Memory:
// the backlog is bounded; output beyond the bound keeps its beginning and its
// most recent end, with a line in the log saying how much was dropped between.
import type { Logger } from 'pino';
import { AuthError, ProtocolError, type ControlPlaneClient } from './control-plane-client.ts';

const flushIntervalMs = 200;
const maxChunkBytes = 1024 * 1024;
/** A backlog at least this large is sent without waiting for the next tick. */
const backlogBytes = 64 * 1024;
/** Bytes kept from the start of a backlog that overflows, and from its most recent end. */
const headLimitBytes = 32 * 1024 * 1024;
const tailLimitBytes = 32 * 1024 * 1024;
/** What close() keeps of a backlog it cannot ship in time: the end, where the error usually is. */
const closingTailBytes = 256 * 1024;

const empty = Buffer.alloc(0);

/** Buffers in order, taken from the front without copying the rest. */
class ByteQueue {
  #items: Buffer[] = [];
  #first = 0;
  bytes = 0;

  push(data: Buffer): void {
    this.#items.push(data);
    this.bytes += data.length;
  }

  /** Up to `limit` bytes from the front, copied only when they span buffers. */
  peek(limit: number): Buffer {
    const head = this.#items[this.#first];
    if (!head) return empty;
    if (head.length >= limit || this.#first === this.#items.length - 1) return head.subarray(0, limit);
    const parts: Buffer[] = [];
    let taken = 0;
    for (let index = this.#first; index < this.#items.length && taken < limit; index++) {
      const part = this.#items[index]!.subarray(0, limit - taken);
      parts.push(part);
      taken += part.length;
    }
    return Buffer.concat(parts, taken);
  }

  /** Removes `count` bytes from the front. */
  drop(count: number): void {
    let left = Math.min(count, this.bytes);
    this.bytes -= left;
    while (left > 0) {
      const head = this.#items[this.#first]!;
      if (head.length <= left) {
        left -= head.length;
        this.#items[this.#first++] = empty;
      } else {
        this.#items[this.#first] = head.subarray(left);
        left = 0;
      }
    }
    // Compact now and then so the array does not grow without end.
    if (this.#first > 1024 && this.#first * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Removes everything, returning the buffers in order. */
  takeAll(): Buffer[] {
    const all = this.#items.slice(this.#first);
    this.#items = [];
    this.#first = 0;
    this.bytes = 0;
    return all;
  }
}

function droppedLine(bytes: number): Buffer {
  return Buffer.from(`\n[outpost agent] ${bytes} bytes of output were dropped here: the job wrote faster than the control plane accepted its log\n`);
}

export class LogShipper {
  readonly #client: ControlPlaneClient;
  readonly #session: string;
  readonly #jobId: string;
  readonly #leaseId: string;
  readonly #logger: Logger;
  /** Bytes to ship next, in order; the first ones may be in flight. */
  readonly #pending = new ByteQueue();
  /** While the backlog overflows: the most recent output, shipped after a marker once #pending is sent. */
  #tail: ByteQueue | undefined;
  #droppedBytes = 0;
  /** Offset of the first pending byte (= bytes the server has confirmed). */
  #offset: number;
  /** The last request was answered, so the server holds exactly #offset bytes. */
  #inSync = true;
  #inFlight: Promise<void> | undefined;
  /** Closing: send whatever is left, however small, until this time (then close() looks again). */
  #closingUntil: number | undefined;
  #timer: NodeJS.Timeout | undefined;
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
  }) {
    this.#onDelivered = options.onDelivered;
    this.#client = options.client;
    this.#session = options.session;
    this.#jobId = options.jobId;
    this.#leaseId = options.leaseId;
    this.#offset = options.startOffset;
    this.#logger = options.logger;
    this.#timer = setInterval(() => void this.#flush(), flushIntervalMs);
    this.#timer.unref();
  }

  /** Bytes written so far and not dropped, confirmed or not. */
  get size(): number {
    return this.#offset + this.#pending.bytes + (this.#tail?.bytes ?? 0);
  }

  /** Bytes held in memory. */
  get buffered(): number {
    return this.#pending.bytes + (this.#tail?.bytes ?? 0);
  }

  write(data: Buffer | string): void {
    if (this.#dead) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length === 0) return;
    if (!this.#tail && this.#pending.bytes + bytes.length <= headLimitBytes) {
      this.#pending.push(bytes);
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
    // next tick retries, so a server that is down is not hammered.
    if (this.#pending.bytes >= backlogBytes && this.#inSync) void this.#flush();
  }

  line(text: string): void {
    this.write(`${text}\n`);
  }

  /** Sends everything still buffered; gives up after `timeoutMs`. */
  async close(timeoutMs = 60_000): Promise<void> {
    clearInterval(this.#timer);
    const started = Date.now();
    const deadline = started + timeoutMs;
    let trimmed = false;
    while (!this.#dead && this.buffered > 0 && Date.now() < deadline) {
      // Half the time gone and much left: the end of the output (where the
      // error usually is) matters more than its middle.
      if (!trimmed && this.#inSync && !this.#inFlight && Date.now() - started > timeoutMs / 2 && this.buffered > closingTailBytes) {
        trimmed = true;
        this.#keepOnlyTail(closingTailBytes);
      }
      // A send under way (started by a write or a tick) obeys this too.
      this.#closingUntil = trimmed ? deadline : Math.min(deadline, started + timeoutMs / 2);
      await this.#flush();
      if (this.buffered > 0) await new Promise((resolve) => setTimeout(resolve, flushIntervalMs));
    }
    await this.#inFlight;
    if (this.buffered > 0 && !this.#dead) {
      this.#logger.error({ job: this.#jobId, bytes: this.buffered }, 'could not deliver the end of the job log');
    }
  }

  /** Replaces the backlog by a marker and its last `keep` bytes (only when nothing is in flight). */
  #keepOnlyTail(keep: number): void {
    const all = new ByteQueue();
    for (const part of this.#pending.takeAll()) all.push(part);
    for (const part of this.#tail?.takeAll() ?? []) all.push(part);
    this.#tail = undefined;
    const dropped = all.bytes - keep;
    all.drop(dropped);
    this.#pending.push(droppedLine(this.#droppedBytes + dropped));
    this.#droppedBytes = 0;
    for (const part of all.takeAll()) this.#pending.push(part);
  }

  /** Starts sending unless a send is under way; it goes on while a backlog remains. */
  #flush(): Promise<void> {
    if (this.#inFlight || this.#dead || this.buffered === 0) return this.#inFlight ?? Promise.resolve();
    this.#inFlight = this.#drain().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #drain(): Promise<void> {
    do {
      if (this.#pending.bytes === 0 && this.#tail) {
        // The head is confirmed: the marker and the recent output follow it.
        if (this.#droppedBytes > 0) this.#pending.push(droppedLine(this.#droppedBytes));
        for (const part of this.#tail.takeAll()) this.#pending.push(part);
        this.#tail = undefined;
        this.#droppedBytes = 0;
      }
      // A failed send is retried at the next tick, not in a tight loop.
      if (!(await this.#send())) return;
      if (this.#closingUntil !== undefined && Date.now() >= this.#closingUntil) return;
    } while (!this.#dead && (this.#pending.bytes >= backlogBytes || this.#tail || (this.#closingUntil !== undefined && this.#pending.bytes > 0)));
  }

  /** One request; whether it was answered. */
  async #send(): Promise<boolean> {
    // Writes may arrive while this request is in flight: they join the queue
    // behind the chunk, which leaves it only once confirmed.
    const chunk = this.#pending.peek(maxChunkBytes);
    try {
      const size = await this.#client.appendLog(this.#session, this.#jobId, this.#leaseId, this.#offset, chunk);
      const confirmed = Math.max(0, Math.min(size - this.#offset, this.#pending.bytes));
      this.#pending.drop(confirmed);
      this.#offset += confirmed;
      if (confirmed > 0) this.#onDelivered?.(confirmed);
      this.#inSync = true;
      return true;
    } catch (error) {
      this.#inSync = false;
      if (error instanceof ProtocolError && error.code === 'log_offset_gap' && typeof error.meta.size === 'number') {
        // The server has fewer bytes than we believed confirmed: nothing we can
        // resend, so report the gap loudly and continue from the server's size.
        this.#logger.error({ job: this.#jobId, expected: this.#offset, server: error.meta.size }, 'server log is shorter than confirmed; continuing');
        this.#offset = error.meta.size;
        return false;
      }
      if (error instanceof AuthError || (error instanceof ProtocolError && error.status < 500)) {
        this.#dead = true;
        this.#logger.warn({ job: this.#jobId, err: error.message }, 'log shipping stopped');
        return false;
      }
      this.#logger.debug({ job: this.#jobId, err: (error as Error).message }, 'log chunk not delivered; will retry');
      return false;
    }
  }
}
