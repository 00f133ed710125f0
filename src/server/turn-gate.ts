// Paces bursty background work so that latency-sensitive requests are not
// queued behind it. With 1,000 agents, a burst of long-polls (all agents
// asking for work in the same second, or their polls timing out together)
// arrives as one batch of ready sockets; run as they are read, their
// database work fills the event loop (node:sqlite is synchronous) or
// PostgreSQL's connection pool queue (FIFO) for a second or more, and every
// heartbeat read in the meantime waits behind all of it.
//
// Work run through a gate is admitted one piece per event-loop turn
// (setImmediate: after the loop has read the sockets that became ready) and
// at most `concurrency` pieces at a time. Requests that do not use the gate,
// heartbeats above all, are served in every turn between admissions: they
// wait for at most one piece of gated work, not for the whole burst.
export class TurnGate {
  readonly #concurrency: number;
  readonly #waiting: (() => void)[] = [];
  #active = 0;
  #scheduled = false;

  constructor(concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
    this.#concurrency = concurrency;
  }

  /** Pieces of work admitted and not yet finished. */
  get active(): number {
    return this.#active;
  }

  /** Pieces of work waiting to be admitted. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `work` once admitted (first come, first admitted); its result or error passes through. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    await new Promise<void>((admit) => {
      this.#waiting.push(admit);
      this.#schedule();
    });
    try {
      return await work();
    } finally {
      this.#active -= 1;
      this.#schedule();
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#waiting.length === 0 || this.#active >= this.#concurrency) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#active >= this.#concurrency) return;
      const admit = this.#waiting.shift();
      if (!admit) return;
      this.#active += 1;
      admit();
      // The next admission waits for the next turn, whatever this one does.
      this.#schedule();
    });
  }
}
