// Wake-ups for long-polls and log followers. A notification only wakes a
// waiter, which then reads the database: the tables are the truth, so a lost
// or duplicated wake-up costs latency, never correctness. This in-process
// implementation serves one server; with several replicas on PostgreSQL the
// same interface is backed by LISTEN/NOTIFY.
import { EventEmitter } from 'node:events';

export type Topic = `pool:${string}` | `agent:${string}` | `log:${string}` | `run:${string}`;

export interface Notifier {
  notify(topic: Topic): void;
  /** Resolves when any topic fires, the timeout passes, or the signal aborts. */
  wait(topics: readonly Topic[], timeoutMs: number, signal?: AbortSignal): Promise<'notified' | 'timeout' | 'aborted'>;
}

export class LocalNotifier implements Notifier {
  readonly #events = new EventEmitter();

  constructor() {
    // Hundreds of agents may long-poll one pool topic at once.
    this.#events.setMaxListeners(0);
  }

  notify(topic: Topic): void {
    this.#events.emit(topic);
  }

  wait(topics: readonly Topic[], timeoutMs: number, signal?: AbortSignal): Promise<'notified' | 'timeout' | 'aborted'> {
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      const finish = (outcome: 'notified' | 'timeout' | 'aborted') => {
        clearTimeout(timer);
        for (const topic of topics) this.#events.off(topic, onNotify);
        signal?.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onNotify = () => finish('notified');
      const onAbort = () => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      for (const topic of topics) this.#events.on(topic, onNotify);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
