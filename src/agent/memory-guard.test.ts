import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { decide, MemoryGuard } from './memory-guard.ts';

const mib = 1024 * 1024;
// Limit 1000 MiB, soft limit 80 % (800 MiB), warning at 90 % of that (720 MiB).
const thresholds = { limitBytes: 1000 * mib, softLimitPercent: 80, warnPercent: 90 };
const fresh = { warned: false, interrupted: false };

test('decide: nothing below the warning, a warning once, an interrupt at the soft limit, then nothing', () => {
  assert.equal(decide(700 * mib, thresholds, fresh), 'none');
  assert.equal(decide(720 * mib, thresholds, fresh), 'warn');
  assert.equal(decide(790 * mib, thresholds, { warned: true, interrupted: false }), 'none');
  assert.equal(decide(800 * mib, thresholds, { warned: true, interrupted: false }), 'interrupt');
  // A jump straight past the soft limit interrupts without a warning first.
  assert.equal(decide(950 * mib, thresholds, fresh), 'interrupt');
  assert.equal(decide(999 * mib, thresholds, { warned: true, interrupted: true }), 'none');
  // 100 % of the soft limit: no separate warning.
  assert.equal(decide(799 * mib, { ...thresholds, warnPercent: 100 }, fresh), 'none');
});

/** A guard over a scripted series of measurements (undefined: not measurable, Error: the read failed). */
function guardOver(samples: (number | undefined | Error)[]) {
  const lines: string[] = [];
  let interrupts = 0;
  const guard = new MemoryGuard({
    ...thresholds,
    intervalMs: 5,
    usage: async () => {
      const next = samples.shift();
      if (next instanceof Error) throw next;
      return next === undefined ? undefined : next * mib;
    },
    log: (line) => void lines.push(line),
    interrupt: async () => void interrupts++,
    logger: pino({ level: 'silent' }),
  });
  return { guard, lines, interrupts: () => interrupts };
}

test('the guard warns once, interrupts once with the run-log line, and reports memory_limit', async () => {
  const { guard, lines, interrupts } = guardOver([100, undefined, new Error('gone'), 730, 760, 810, 900]);
  const decisions = [];
  for (let i = 0; i < 7; i++) decisions.push(await guard.check());
  assert.deepEqual(decisions, ['none', 'none', 'none', 'warn', 'none', 'interrupt', 'none']);
  assert.equal(interrupts(), 1);
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^Outpost agent: warning: the job uses 730 MiB of its 1000 MiB memory limit; at the soft limit \(80 %, 800 MiB\) it is interrupted$/);
  assert.equal(
    lines[1],
    'Outpost agent: the job uses 810 MiB of its 1000 MiB memory limit (soft limit 80 %): interrupting it so the engine can stop at a safe point and save state',
  );
  assert.ok(guard.tripped);
  const exit = { code: 3, signal: null, oomKilled: false };
  const failure = guard.failure('canceled', exit);
  assert.equal(failure?.code, 'memory_limit');
  assert.match(failure!.message, /reached its memory soft limit \(80 % of 1000 MiB; it used 810 MiB\).*the state the engine saved is kept/);
  // Succeeded anyway: reported as such; killed by the kernel regardless: out_of_memory.
  assert.equal(guard.failure('succeeded', exit), undefined);
  assert.equal(guard.failure('canceled', { code: null, signal: 'SIGKILL', oomKilled: true })?.code, 'out_of_memory');
});

test('an untripped guard changes no outcome', () => {
  const { guard } = guardOver([]);
  assert.equal(guard.failure('failed', { code: 1, signal: null, oomKilled: false }), undefined);
});

test('started, the guard polls until it interrupts, then stops measuring', async () => {
  const { guard, interrupts } = guardOver([100, 200, 850, 900, 950]);
  guard.start();
  await new Promise((resolve) => setTimeout(resolve, 100));
  guard.stop();
  assert.equal(interrupts(), 1);
  assert.ok(guard.tripped);
});

test('a stopped guard measures no more', async () => {
  const samples = [100, 900];
  const { guard, interrupts } = guardOver(samples);
  guard.start();
  guard.stop();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(interrupts(), 0);
  assert.equal(samples.length, 2);
});
