// Graceful cancellation of the job. The agent asks for it with SIGINT or
// SIGTERM to this process; the operation then stops before its next step,
// and a running engine is interrupted (see engine-process.ts) so it can stop
// cleanly and release the state lock. Force-cancel is not handled here: the
// agent SIGKILLs the whole process group, engine included.

export class Cancellation {
  readonly #controller = new AbortController();
  readonly #listeners = new Set<() => void>();

  get requested(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Aborts waits that should not outlive a cancel (HTTP retries, downloads). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  request(): void {
    if (this.requested) return;
    this.#controller.abort(new CanceledError());
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` once when cancellation is requested; returns the unsubscribe. */
  onRequest(listener: () => void): () => void {
    if (this.requested) {
      listener();
      return () => {};
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Throws when cancellation was requested: called between steps. */
  throwIfRequested(): void {
    if (this.requested) throw new CanceledError();
  }
}

/** Thrown to unwind the operation after a cancel; becomes outcome `canceled`. */
export class CanceledError extends Error {
  constructor() {
    super('the job was canceled');
    this.name = 'CanceledError';
  }
}

export type CancelSignalName = 'SIGINT' | 'SIGTERM';

/**
 * Turns SIGINT/SIGTERM into a cancellation request for as long as the
 * operation runs; returns a function that restores the default handling.
 */
export function cancelOnSignals(cancellation: Cancellation, onSignal: (signal: CancelSignalName) => void): () => void {
  const handler = (signal: CancelSignalName): void => {
    onSignal(signal);
    cancellation.request();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
