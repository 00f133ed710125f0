// Latency distributions for the benchmarks whose targets are percentiles
// (claim latency, log latency): measure.ts's Summary stops at p90, and a p99
// target needs the tail. Nearest-rank percentiles, like measure.ts.

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

export function percentiles(samples: readonly number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest rank: with fewer than 100 samples p99 is the maximum, which is
  // what a reader of "p99 over 10 samples" should assume anyway.
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  return {
    n: sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

/** Prints one row per distribution; `digits` for sub-millisecond values. */
export function printPercentiles(title: string, rows: readonly (readonly [string, Percentiles])[], digits = 0): void {
  const columns = ['n', 'p50', 'p90', 'p99', 'mean', 'min', 'max'] as const;
  const out = [title, `${'what'.padEnd(40)} ${columns.map((c) => c.padStart(8)).join(' ')}`];
  for (const [name, p] of rows) {
    out.push(`${name.padEnd(40)} ${columns.map((c) => (c === 'n' ? String(p.n) : p[c].toFixed(digits)).padStart(8)).join(' ')}`);
  }
  process.stdout.write(`${out.join('\n')}\n\n`);
}
