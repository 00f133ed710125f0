import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobLog, resumePoint, type LogLedger, type LogSink } from './job-log.ts';

/** A sink that keeps what is written. */
function recording(): LogSink & { bytes(): Buffer; text(): string } {
  const parts: Buffer[] = [];
  return {
    write: (data: Buffer | string) => void parts.push(Buffer.from(data)),
    close: async () => undefined,
    bytes: () => Buffer.concat(parts),
    text: () => Buffer.concat(parts).toString(),
  };
}

type Event = { output: string } | { line: string };

/** What a job's events make of its log, written through a JobLog; the ledger as it was persisted after each event. */
function play(events: readonly Event[], base: number): { log: string; ledgers: LogLedger[] } {
  const sink = recording();
  let persisted: LogLedger = { base, lines: [] };
  const log = JobLog.starting(sink, base, (ledger) => (persisted = ledger));
  const ledgers = [persisted];
  for (const event of events) {
    if ('output' in event) log.sandboxOutput(Buffer.from(event.output));
    else log.line(event.line);
    ledgers.push(persisted);
  }
  return { log: sink.text(), ledgers };
}

/** The sandbox's whole output, in chunks cut differently from the first run's. */
function outputOf(events: readonly Event[], chunkSize: number): Buffer[] {
  const whole = Buffer.from(events.flatMap((event) => ('output' in event ? [event.output] : [])).join(''));
  const chunks: Buffer[] = [];
  for (let at = 0; at < whole.length; at += chunkSize) chunks.push(whole.subarray(at, at + chunkSize));
  return chunks;
}

const events: Event[] = [
  { line: 'Outpost agent a: plan job j, driver docker' },
  { line: 'Downloading OpenTofu 1.10.10 ✓' },
  { output: 'Outpost: fetching the job specification\n' },
  { output: 'Initializing the back' },
  { line: 'Outpost provider cache: a note in the middle of a line' },
  { output: 'end...\nInitializing provider plugins...\n' },
  { output: 'héllo — wide characters\n' },
  { line: 'Outpost agent: warning: the job uses 800 MiB' },
  { line: 'Outpost agent: the job uses 900 MiB: interrupting it' },
  { output: 'Interrupt received.\n' },
  { output: 'Plan: 1 to add, 0 to change, 0 to destroy.\n' },
];

test('a restarted agent continues the log exactly, wherever the control plane\'s copy ends and whenever the agent died', () => {
  const base = 17;
  for (let crashAfter = 2; crashAfter <= events.length; crashAfter++) {
    // The previous process wrote the first `crashAfter` events; its lines after that never happened.
    const { log: before, ledgers } = play(events.slice(0, crashAfter), base);
    const expected = play(events.filter((event, index) => index < crashAfter || 'output' in event), base).log;
    const written = Buffer.from(before);
    for (let held = base; held <= base + written.length; held++) {
      for (const chunkSize of [1, 5, 64]) {
        const sink = recording();
        const log = JobLog.resuming(sink, ledgers[crashAfter]!, held, () => undefined);
        for (const chunk of outputOf(events, chunkSize)) log.sandboxOutput(chunk);
        log.outputEnded();
        const whole = Buffer.concat([written.subarray(0, held - base), sink.bytes()]).toString();
        assert.equal(whole, expected, `crash after event ${crashAfter}, control plane held ${held - base} bytes, chunks of ${chunkSize}`);
      }
    }
  }
});

test('the resume point counts the sandbox bytes the control plane holds and the text of ours it lacks', () => {
  const ledger: LogLedger = { base: 100, lines: [{ after: 0, text: 'head\n' }, { after: 10, text: 'mid\n' }] };
  assert.deepEqual(resumePoint(ledger, 100), { sandboxBytes: 0, endsInOutput: false, pending: [{ after: 0, bytes: Buffer.from('head\n') }, { after: 10, bytes: Buffer.from('mid\n') }] });
  assert.deepEqual(resumePoint(ledger, 102).pending[0], { after: 0, bytes: Buffer.from('ad\n') });
  assert.deepEqual({ ...resumePoint(ledger, 108), pending: undefined }, { sandboxBytes: 3, endsInOutput: true, pending: undefined });
  assert.equal(resumePoint(ledger, 115).sandboxBytes, 10);
  assert.equal(resumePoint(ledger, 119).pending.length, 0);
  assert.deepEqual({ ...resumePoint(ledger, 125), pending: undefined }, { sandboxBytes: 16, endsInOutput: true, pending: undefined });
});

test('a line for the start of a line waits for the sandbox to end the line it is in', () => {
  const sink = recording();
  const log = JobLog.starting(sink, 0, () => undefined);
  log.sandboxOutput(Buffer.from('half a li'));
  log.lineAtLineStart('note');
  log.sandboxOutput(Buffer.from('ne\nnext line\n'));
  assert.equal(sink.text(), 'half a line\nnote\nnext line\n');
  log.lineAtLineStart('at once');
  assert.equal(sink.text(), 'half a line\nnote\nnext line\nat once\n');
});

test('resuming, our lines go where the control plane\'s copy ends, and are recorded there for the next restart', () => {
  const first = play([{ line: 'header' }, { output: 'one\ntwo\nthr' }], 0);
  const held = Buffer.byteLength('header\none\ntw');
  const output = Buffer.from('one\ntwo\nthree\nfour\n');
  const expected = 'header\none\ntwo\nOutpost agent: re-attached\nthree\nwritten after\nfour\n';
  const sink = recording();
  let ledger = first.ledgers.at(-1)!;
  const log = JobLog.resuming(sink, ledger, held, (changed) => (ledger = changed));
  log.lineAtLineStart('Outpost agent: re-attached');
  log.sandboxOutput(output.subarray(0, 14));
  log.line('written after');
  log.sandboxOutput(output.subarray(14));
  assert.equal(`${first.log.slice(0, held)}${sink.text()}`, expected);
  // A second restart finds the same text at the same places.
  for (let heldAgain = held; heldAgain <= expected.length; heldAgain++) {
    const again = recording();
    JobLog.resuming(again, ledger, heldAgain, () => undefined).sandboxOutput(output);
    assert.equal(`${expected.slice(0, heldAgain)}${again.text()}`, expected, `second restart, ${heldAgain} bytes held`);
  }
});

test('a line written while the output is read again goes where the control plane\'s copy ends', () => {
  const first = play([{ line: 'header' }, { output: 'one\ntwo\n' }], 0);
  const held = first.log.length;
  const sink = recording();
  const log = JobLog.resuming(sink, first.ledgers.at(-1)!, held, () => undefined);
  log.line('early');
  log.sandboxOutput(Buffer.from('one\n'));
  assert.equal(sink.text(), '', 'nothing before the output reaches the end of the copy');
  log.sandboxOutput(Buffer.from('two\nthree\n'));
  assert.equal(sink.text(), 'early\nthree\n');
});
