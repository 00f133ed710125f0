// What a plan or an apply changes, in the counts a JobResult reports. A plan
// is counted from the engine's machine-readable plan (`show -json`), not from
// its human output; an apply from the engine's closing "Apply complete!" line,
// the only place it states what it did.
import { z } from 'zod';
import { OutpostError } from '../protocol/errors.ts';

export interface ChangeCounts {
  readonly additions: number;
  readonly changes: number;
  readonly destructions: number;
}

export interface PlanSummary extends ChangeCounts {
  /** Anything to apply: a resource change or an output change. */
  readonly hasChanges: boolean;
}

// Only the fields we count; the rest of the (large, versioned) format is ignored.
const actions = z.array(z.string());
const planJson = z.object({
  resource_changes: z.array(z.object({ change: z.object({ actions }) })).optional(),
  output_changes: z.record(z.string(), z.object({ actions })).optional(),
});

/** Counts a plan the way the engine's "Plan: N to add, ..." line does. */
export function summarizePlan(json: unknown): PlanSummary {
  const parsed = planJson.safeParse(json);
  if (!parsed.success) {
    throw new OutpostError('engine_failed', `the engine's JSON plan has an unexpected shape: ${parsed.error.message}`);
  }
  let additions = 0;
  let changes = 0;
  let destructions = 0;
  for (const { change } of parsed.data.resource_changes ?? []) {
    const has = (action: string): boolean => change.actions.includes(action);
    if (has('create') && has('delete')) {
      // A replacement, in either order (create_before_destroy or not).
      additions += 1;
      destructions += 1;
    } else if (has('create')) {
      additions += 1;
    } else if (has('delete')) {
      destructions += 1;
    } else if (has('update')) {
      changes += 1;
    }
    // "no-op", "read" and "forget" change nothing that is counted.
  }
  const outputsChange = Object.values(parsed.data.output_changes ?? {}).some(({ actions: list }) =>
    list.some((action) => action !== 'no-op'),
  );
  return { additions, changes, destructions, hasChanges: additions + changes + destructions > 0 || outputsChange };
}

/** "Plan: 1 to add, 0 to change, 0 to destroy." */
export function describeChanges(counts: ChangeCounts): string {
  return `Plan: ${counts.additions} to add, ${counts.changes} to change, ${counts.destructions} to destroy.`;
}

const applyLine = /(?:Apply|Destroy) complete! Resources: (?:(\d+) added, (\d+) changed, )?(\d+) destroyed\./;

/** Reads the counts from the engine's closing line of an apply; undefined if it is not this line. */
export function parseApplyCompleteLine(line: string): ChangeCounts | undefined {
  const match = applyLine.exec(line);
  if (match === null) return undefined;
  return { additions: Number(match[1] ?? 0), changes: Number(match[2] ?? 0), destructions: Number(match[3] ?? 0) };
}

const maxWatchedLine = 4096;

/** Watches output text as it streams and remembers the apply's closing counts. */
export class ApplyCompleteWatcher {
  #partialLine = '';
  #counts: ChangeCounts | undefined;

  get counts(): ChangeCounts | undefined {
    return this.#counts;
  }

  push(text: string): void {
    const lines = (this.#partialLine + text).split('\n');
    // The line we look for is short; a longer unfinished line is not it, and
    // dropping it keeps an engine that never prints a newline from growing this.
    const partial = lines.pop() ?? '';
    this.#partialLine = partial.length > maxWatchedLine ? '' : partial;
    for (const line of lines) this.#check(line);
  }

  end(): void {
    this.#check(this.#partialLine);
    this.#partialLine = '';
  }

  #check(line: string): void {
    this.#counts = parseApplyCompleteLine(line) ?? this.#counts;
  }
}
