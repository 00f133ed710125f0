// Waiting for job pods to reach a state: one list request per tick for the
// job pods of one deployment (and, for a worker, of its node), however many
// jobs wait, rather than one watch or one poll per pod. The list is the truth;
// ticks are half a second apart while someone waits, and stop when nobody does.
import type { V1Pod } from '@kubernetes/client-node';
import type { ExitResult } from '../driver.ts';
import type { KubeApi, PodQuery } from './kube-api.ts';
import { podLabels } from './pod-manifest.ts';
import { jobContainerState, type JobContainerState } from './pod-status.ts';

const tickMs = 500;

interface Waiter {
  podName: string;
  /** Settles the wait when the pod (or its absence) says so. */
  check(pod: V1Pod | undefined): boolean;
}

/** Which job pods one waiter lists: those of a deployment (its instance label), on one node when given. */
export interface PodScope {
  instance: string;
  nodeName?: string | undefined;
}

export class PodWaiter {
  readonly #api: KubeApi;
  readonly #query: PodQuery;
  readonly #waiters = new Set<Waiter>();
  #ticking = false;

  constructor(api: KubeApi, scope: PodScope) {
    this.#api = api;
    this.#query = {
      labelSelector: `${podLabels.role}=job,${podLabels.instance}=${scope.instance}`,
      ...(scope.nodeName === undefined ? {} : { fieldSelector: `spec.nodeName=${scope.nodeName}` }),
    };
  }

  /** Resolves once the job container runs or has ended, or is stuck; after `timeoutMs` still pending, it is stuck with the reason it waits. */
  started(podName: string, timeoutMs: number): Promise<JobContainerState> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve) => {
      this.#add({
        podName,
        check: (pod) => {
          if (!pod) {
            resolve({ state: 'stuck', reason: 'the pod was deleted before its job container started' });
            return true;
          }
          const state = jobContainerState(pod);
          if (state.state !== 'pending') {
            resolve(state);
            return true;
          }
          if (Date.now() < deadline) return false;
          resolve({ state: 'stuck', reason: `its job container did not start within ${Math.round(timeoutMs / 1000)} s${state.reason ? ` (${state.reason})` : ''}` });
          return true;
        },
      });
    });
  }

  /** The job container's exit, or undefined when the pod disappeared first. */
  exited(podName: string): Promise<ExitResult | undefined> {
    return new Promise((resolve) => {
      this.#add({
        podName,
        check: (pod) => {
          if (!pod) {
            resolve(undefined);
            return true;
          }
          const state = jobContainerState(pod);
          if (state.state !== 'terminated') return false;
          resolve(state.exit);
          return true;
        },
      });
    });
  }

  /** Resolves once the pod no longer exists. */
  gone(podName: string): Promise<void> {
    return new Promise((resolve) => this.#add({ podName, check: (pod) => (pod ? false : (resolve(), true)) }));
  }

  /** Any condition over the pod, for the controller (scheduled, taken over by a worker). */
  until<T>(podName: string, test: (pod: V1Pod | undefined) => T | undefined): Promise<T> {
    return new Promise((resolve) => {
      this.#add({
        podName,
        check: (pod) => {
          const value = test(pod);
          if (value === undefined) return false;
          resolve(value);
          return true;
        },
      });
    });
  }

  #add(waiter: Waiter): void {
    this.#waiters.add(waiter);
    if (!this.#ticking) {
      this.#ticking = true;
      setTimeout(() => void this.#tick(), 0);
    }
  }

  async #tick(): Promise<void> {
    let pods: Map<string, V1Pod> | undefined;
    try {
      const listed = await this.#api.listPods(this.#query);
      pods = new Map(listed.map((pod) => [pod.metadata?.name ?? '', pod]));
    } catch {
      pods = undefined; // the API did not answer: try again next tick
    }
    if (pods) {
      for (const waiter of [...this.#waiters]) {
        if (waiter.check(pods.get(waiter.podName))) this.#waiters.delete(waiter);
      }
    }
    if (this.#waiters.size > 0) setTimeout(() => void this.#tick(), tickMs);
    else this.#ticking = false;
  }
}
