// Wake-ups for long-polls and log followers. A notification only wakes a
// waiter, which then reads the database: the tables are the truth, so a lost
// or duplicated wake-up costs latency, never correctness. This in-process
// implementation serves one server; with several replicas on PostgreSQL the
// same interface is backed by LISTEN/NOTIFY.
//
// A notification may wake only the first few waiters of a topic (longest
// waiting first): new work in a pool needs a few agents to look, not all of
// them. A poll that found work wakes the next few in turn (protocol-routes),
// so a burst of jobs is dispatched in waves instead of a herd of every
// waiting agent running its claim query at once.
export type Topic = `pool:${string}` | `agent:${string}` | `log:${string}` | `run:${string}` | 'webhooks' | 'vcs' | `vcs-pool:${string}`;

export interface Notifier {
  /** Wakes the waiters of `topic`: at most `limit` of them (longest waiting first), or all. */
  notify(topic: Topic, limit?: number): void;
  /** Resolves when any topic fires, the timeout passes, or the signal aborts. */
  wait(topics: readonly Topic[], timeoutMs: number, signal?: AbortSignal): Promise<'notified' | 'timeout' | 'aborted'>;
}

/** How many waiting polls a pool's new work wakes at once. */
export const poolWakeLimit = 8;

type Waiter = () => void;

export class LocalNotifier implements Notifier {
  /** Insertion-ordered: the first waiter of a set has waited longest. */
  readonly #waiters = new Map<Topic, Set<Waiter>>();

  notify(topic: Topic, limit = Number.POSITIVE_INFINITY): void {
    const waiters = this.#waiters.get(topic);
    if (!waiters) return;
    let woken = 0;
    // Copied first: a woken waiter removes itself from the set.
    for (const wake of [...waiters]) {
      if (woken >= limit) break;
      wake();
      woken += 1;
    }
  }

  wait(topics: readonly Topic[], timeoutMs: number, signal?: AbortSignal): Promise<'notified' | 'timeout' | 'aborted'> {
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      const finish = (outcome: 'notified' | 'timeout' | 'aborted') => {
        clearTimeout(timer);
        for (const topic of topics) {
          const waiters = this.#waiters.get(topic);
          waiters?.delete(onNotify);
          if (waiters?.size === 0) this.#waiters.delete(topic);
        }
        signal?.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onNotify = () => finish('notified');
      const onAbort = () => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      for (const topic of topics) {
        let waiters = this.#waiters.get(topic);
        if (!waiters) this.#waiters.set(topic, (waiters = new Set()));
        waiters.add(onNotify);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
