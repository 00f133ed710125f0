// Ships a job's output to the control plane as append-only chunks with byte
// offsets. A chunk is dropped from the buffer only once the server confirmed
// the size that includes it, so retries after a timeout or a server restart
// neither lose nor duplicate bytes (the server ignores bytes it already has).
import type { Logger } from 'pino';
import { AuthError, ProtocolError, type ControlPlaneClient } from './control-plane-client.ts';

const flushIntervalMs = 200;
const maxChunkBytes = 1024 * 1024;

export class LogShipper {
  readonly #client: ControlPlaneClient;
  readonly #session: string;
  readonly #jobId: string;
  readonly #leaseId: string;
  readonly #logger: Logger;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Offset of the first pending byte (= bytes the server has confirmed). */
  #offset: number;
  #inFlight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #dead = false;

  constructor(options: { client: ControlPlaneClient; session: string; jobId: string; leaseId: string; startOffset: number; logger: Logger }) {
    this.#client = options.client;
    this.#session = options.session;
    this.#jobId = options.jobId;
    this.#leaseId = options.leaseId;
    this.#offset = options.startOffset;
    this.#logger = options.logger;
    this.#timer = setInterval(() => void this.#flushOnce(), flushIntervalMs);
    this.#timer.unref();
  }

  /** Bytes written so far, confirmed or not. */
  get size(): number {
    return this.#offset + this.#pendingBytes;
  }

  write(data: Buffer | string): void {
    if (this.#dead) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length === 0) return;
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
  }

  line(text: string): void {
    this.write(`${text}\n`);
  }

  /** Sends everything still buffered; gives up after `timeoutMs`. */
  async close(timeoutMs = 60_000): Promise<void> {
    clearInterval(this.#timer);
    const deadline = Date.now() + timeoutMs;
    while (!this.#dead && this.#pendingBytes > 0 && Date.now() < deadline) {
      await this.#flushOnce();
      if (this.#pendingBytes > 0) await new Promise((resolve) => setTimeout(resolve, flushIntervalMs));
    }
    await this.#inFlight;
    if (this.#pendingBytes > 0 && !this.#dead) {
      this.#logger.error({ job: this.#jobId, bytes: this.#pendingBytes }, 'could not deliver the end of the job log');
    }
  }

  #flushOnce(): Promise<void> {
    if (this.#inFlight || this.#dead || this.#pendingBytes === 0) return this.#inFlight ?? Promise.resolve();
    this.#inFlight = this.#send().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #send(): Promise<void> {
    // Writes may arrive while this request is in flight: only the buffers
    // taken now are replaced when it ends.
    const taken = this.#pending.length;
    const all = taken === 1 ? this.#pending[0]! : Buffer.concat(this.#pending.slice(0, taken));
    this.#pending = [all, ...this.#pending.slice(taken)];
    const chunk = all.subarray(0, maxChunkBytes);
    try {
      const size = await this.#client.appendLog(this.#session, this.#jobId, this.#leaseId, this.#offset, chunk);
      this.#acknowledge(size);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'log_offset_gap' && typeof error.meta.size === 'number') {
        // The server has fewer bytes than we believed confirmed: nothing we can
        // resend, so report the gap loudly and continue from the server's size.
        this.#logger.error({ job: this.#jobId, expected: this.#offset, server: error.meta.size }, 'server log is shorter than confirmed; continuing');
        this.#offset = error.meta.size;
        return;
      }
      if (error instanceof AuthError || (error instanceof ProtocolError && error.status < 500)) {
        this.#dead = true;
        this.#logger.warn({ job: this.#jobId, err: error.message }, 'log shipping stopped');
        return;
      }
      this.#logger.debug({ job: this.#jobId, err: (error as Error).message }, 'log chunk not delivered; will retry');
    }
  }

  #acknowledge(serverSize: number): void {
    const head = this.#pending[0] ?? Buffer.alloc(0);
    const confirmed = Math.max(0, Math.min(serverSize - this.#offset, head.length));
    const rest = head.subarray(confirmed);
    this.#pending = rest.length > 0 ? [rest, ...this.#pending.slice(1)] : this.#pending.slice(1);
    this.#pendingBytes -= confirmed;
    this.#offset += confirmed;
  }
}
