// Small statistics and output helpers shared by the benchmarks.

export interface Summary {
  n: number;
  median: number;
  mean: number;
  p90: number;
  min: number;
  max: number;
}

/** Cleanups registered by the fixtures, run in reverse order at the end. */
export interface Hooks {
  after(fn: () => unknown): void;
}

export function collectHooks(): Hooks & { runAll(): Promise<void> } {
  const cleanups: (() => unknown)[] = [];
  return {
    after: (fn) => void cleanups.push(fn),
    async runAll() {
      for (const fn of cleanups.reverse()) await fn();
    },
  };
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return {
    n: sorted.length,
    median: at(0.5),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p90: at(0.9),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

export function printTable(title: string, rows: readonly (readonly [string, Summary])[]): void {
  const out = [title, `${'what'.padEnd(36)} ${'median'.padStart(8)} ${'mean'.padStart(8)} ${'p90'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}`];
  for (const [name, s] of rows) {
    out.push(`${name.padEnd(36)} ${[s.median, s.mean, s.p90, s.min, s.max].map((v) => v.toFixed(0).padStart(8)).join(' ')}`);
  }
  process.stdout.write(`${out.join('\n')}\n\n`);
}
