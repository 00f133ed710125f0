// The bench's side of bench/simulated-agents.ts: forks a few load-generator
// processes, splits the simulated agents between them, and merges what they
// measured. Several processes rather than one because a single Node event
// loop driving 1,000 agents would itself become the bottleneck and show up
// as heartbeat latency that is not the server's.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import type { ChildStats, StartMessage } from '../simulated-agents.ts';

const script = path.join(import.meta.dirname, '..', 'simulated-agents.ts');

export interface MergedStats {
  heartbeats: [number, number][];
  claims: number[];
  finishes: number[];
  errors: Record<string, number>;
  /** CPU seconds the load generators used in the window. */
  generatorCpuSeconds: number;
}

export interface LoadGenerator {
  readonly pids: number[];
  /** Wall time of registering every agent, ms. */
  readonly registerMs: number;
  /** Agents stop polling with free_slots 0 and start claiming. */
  startClaiming(): void;
  begin(): void;
  end(): Promise<MergedStats>;
  stop(): Promise<void>;
}

export interface LoadOptions {
  url: string;
  poolToken: string;
  agents: number;
  /** Default: one process per 500 agents. */
  processes?: number;
  /** Agents start claiming at once (true) or only after startClaiming(). */
  claimAtOnce?: boolean;
}

function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string; error?: string }) => {
      if (message.type === type) {
        cleanup();
        resolve(message as T);
      } else if (message.type === 'failed') {
        cleanup();
        reject(new Error(`load generator failed: ${message.error}`));
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`load generator exited (code ${code}) while waiting for '${type}'`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

export async function startLoad(options: LoadOptions): Promise<LoadGenerator> {
  const processes = Math.max(1, Math.min(options.agents, options.processes ?? Math.ceil(options.agents / 500)));
  const children = Array.from({ length: processes }, () => fork(script, [], { execPath: process.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const stop = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.send({ type: 'stop' });
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  };
  try {
    const began = performance.now();
    await Promise.all(
      children.map((child, i) => {
        const share = Math.floor(options.agents / processes) + (i < options.agents % processes ? 1 : 0);
        const message: StartMessage = { type: 'start', url: options.url, poolToken: options.poolToken, agents: share, namePrefix: `sim-${i}`, registerConcurrency: 16 };
        const registered = nextMessage(child, 'registered');
        child.send(message);
        return registered;
      }),
    );
    const registerMs = performance.now() - began;
    const broadcast = (type: string) => children.forEach((child) => child.send({ type }));
    if (options.claimAtOnce ?? true) broadcast('claim');
    return {
      pids: children.map((child) => child.pid!),
      registerMs,
      startClaiming: () => broadcast('claim'),
      begin: () => broadcast('begin'),
      async end() {
        const all = await Promise.all(
          children.map((child) => {
            const stats = nextMessage<{ stats: ChildStats }>(child, 'stats');
            child.send({ type: 'end' });
            return stats;
          }),
        );
        const merged: MergedStats = { heartbeats: [], claims: [], finishes: [], errors: {}, generatorCpuSeconds: 0 };
        for (const { stats } of all) {
          merged.heartbeats.push(...stats.heartbeats);
          merged.claims.push(...stats.claims);
          merged.finishes.push(...stats.finishes);
          merged.generatorCpuSeconds += stats.cpuSeconds;
          for (const [key, count] of Object.entries(stats.errors)) merged.errors[key] = (merged.errors[key] ?? 0) + count;
        }
        return merged;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The q-quantile (0..1) of `values`, NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}
