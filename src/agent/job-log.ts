// A job's run log as the agent writes it: the sandbox's output, with the
// agent's own lines (its header, engine download progress, provider cache
// notes, memory guard warnings, how the job ended) between, shipped by the
// LogShipper.
//
// It keeps a ledger of where each of the agent's lines went among the
// sandbox's output bytes, which the job runner persists with the task
// (task-handles.ts). A driver that recovers a sandbox after an agent restart
// gives its output again from the start (docker: the container's log); with
// the ledger and the size of the log the control plane holds, the restarted
// agent knows exactly which sandbox bytes and which of its lines the control
// plane has, and continues from there: no byte twice, none missing, each
// line of its own at its place. (Output the shipper had to drop, beyond its
// 512 MiB spill, is the one case where the count is lost.)
import type { LogShipper } from './log-shipper.ts';

/** Where the agent's own text sits among the sandbox's output in a job's log. */
export interface LogLedger {
  /** The log offset at which this job's part of the log begins (the assignment's `log_offset`). */
  readonly base: number;
  /** The agent's own text, in log order, each with how many sandbox output bytes came before it. */
  readonly lines: readonly AgentText[];
}

export interface AgentText {
  readonly after: number;
  readonly text: string;
}

const newline = 0x0a;

/** The part of the log shipper the job log writes through. */
export type LogSink = Pick<LogShipper, 'write' | 'close'>;

export class JobLog {
  readonly #sink: LogSink;
  readonly #base: number;
  readonly #lines: AgentText[];
  readonly #onChange: (ledger: LogLedger) => void;
  /** Sandbox output bytes seen so far, those skipped on resuming included. */
  #sandboxBytes = 0;
  /** Resuming: sandbox bytes the control plane already holds; they are read again and not shipped. */
  readonly #resumeAt: number;
  /** Resuming: whether the log the control plane holds ends inside the sandbox's output (else after a line of ours). */
  readonly #heldEndsInOutput: boolean;
  /** Agent text in the ledger that the control plane does not hold yet, each due after that many sandbox bytes. */
  readonly #pending: { after: number; bytes: Buffer }[];
  /** Lines waiting for the sandbox's output to reach the start of a line. */
  readonly #atNextLineStart: string[] = [];
  #atLineStart = true;

  private constructor(sink: LogSink, ledger: LogLedger, resume: ResumePoint, onChange: (ledger: LogLedger) => void) {
    this.#sink = sink;
    this.#base = ledger.base;
    this.#lines = [...ledger.lines];
    this.#onChange = onChange;
    this.#resumeAt = resume.sandboxBytes;
    this.#heldEndsInOutput = resume.endsInOutput;
    this.#pending = resume.pending;
    if (this.#resumeAt === 0) this.#writeDue();
  }

  /** The log of a job the agent starts; its part of the log begins at `base`. */
  static starting(sink: LogSink, base: number, onChange: (ledger: LogLedger) => void): JobLog {
    return new JobLog(sink, { base, lines: [] }, { sandboxBytes: 0, endsInOutput: false, pending: [] }, onChange);
  }

  /**
   * The log of a sandbox the agent took back after a restart: `ledger` is
   * what the previous process persisted, `held` the size of the log the
   * control plane holds (the shipper continues there). The sandbox's output
   * is then written again from its first byte.
   */
  static resuming(sink: LogSink, ledger: LogLedger, held: number, onChange: (ledger: LogLedger) => void): JobLog {
    return new JobLog(sink, ledger, resumePoint(ledger, held), onChange);
  }

  get ledger(): LogLedger {
    return { base: this.#base, lines: [...this.#lines] };
  }

  /** A line of the agent's own, written now (or, while resuming, where the log the control plane holds ends). */
  line(text: string): void {
    const entry = { after: Math.max(this.#sandboxBytes, this.#resumeAt), text: `${text}\n` };
    insertInOrder(this.#lines, entry);
    if (this.#sandboxBytes < this.#resumeAt) insertInOrder(this.#pending, { after: entry.after, bytes: Buffer.from(entry.text) });
    else this.#writeText(Buffer.from(entry.text));
    this.#onChange(this.ledger);
  }

  /** A line of the agent's own, written once the sandbox's output is at the start of a line (now if it is). */
  lineAtLineStart(text: string): void {
    if (this.#sandboxBytes >= this.#resumeAt && this.#atLineStart) this.line(text);
    else this.#atNextLineStart.push(text);
  }

  /** Bytes of the sandbox's output, in order. */
  sandboxOutput(chunk: Buffer): void {
    let data = chunk;
    if (this.#sandboxBytes < this.#resumeAt) {
      const skipped = Math.min(data.length, this.#resumeAt - this.#sandboxBytes);
      if (skipped === 0) return;
      this.#sandboxBytes += skipped;
      if (this.#sandboxBytes === this.#resumeAt) {
        if (this.#heldEndsInOutput) this.#atLineStart = data[skipped - 1] === newline;
        this.#writeDue();
      }
      data = data.subarray(skipped);
    }
    while (data.length > 0) {
      const next = this.#pending[0];
      let piece = next ? data.subarray(0, Math.max(0, next.after - this.#sandboxBytes)) : data;
      if (this.#atNextLineStart.length > 0) {
        const end = piece.indexOf(newline);
        if (end >= 0) piece = piece.subarray(0, end + 1);
      }
      if (piece.length > 0) {
        this.#sink.write(piece);
        this.#atLineStart = piece[piece.length - 1] === newline;
        this.#sandboxBytes += piece.length;
        data = data.subarray(piece.length);
      }
      this.#writeDue();
    }
  }

  /** The sandbox's output has ended: whatever of ours still waits for a place is written now. */
  outputEnded(): void {
    for (const { bytes } of this.#pending.splice(0)) this.#writeText(bytes);
    for (const text of this.#atNextLineStart.splice(0)) this.line(text);
  }

  close(timeoutMs?: number): Promise<void> {
    return this.#sink.close(timeoutMs);
  }

  /** Writes the pending text whose place the output has reached, then the lines that wait for a line start. */
  #writeDue(): void {
    while (this.#pending[0] && this.#pending[0].after <= this.#sandboxBytes) this.#writeText(this.#pending.shift()!.bytes);
    if (this.#atLineStart && this.#sandboxBytes >= this.#resumeAt) {
      for (const text of this.#atNextLineStart.splice(0)) this.line(text);
    }
  }

  #writeText(bytes: Buffer): void {
    this.#sink.write(bytes);
    this.#atLineStart = bytes[bytes.length - 1] === newline;
  }
}

interface ResumePoint {
  /** Sandbox output bytes the control plane holds. */
  readonly sandboxBytes: number;
  readonly endsInOutput: boolean;
  /** The agent's text it does not hold, the rest of a line it holds only part of first. */
  readonly pending: { after: number; bytes: Buffer }[];
}

/** Walks the ledger up to the `held` bytes the control plane has: how many sandbox bytes those include, and which text of ours follows. */
export function resumePoint(ledger: LogLedger, held: number): ResumePoint {
  let position = ledger.base;
  let sandboxBytes = 0;
  for (const [index, entry] of ledger.lines.entries()) {
    const output = entry.after - sandboxBytes;
    if (held <= position + output) {
      const endsInOutput = held > position;
      return { sandboxBytes: sandboxBytes + Math.max(0, held - position), endsInOutput, pending: pendingFrom(ledger.lines.slice(index)) };
    }
    position += output;
    sandboxBytes = entry.after;
    const text = Buffer.from(entry.text);
    if (held < position + text.length) {
      return { sandboxBytes, endsInOutput: false, pending: [{ after: sandboxBytes, bytes: text.subarray(held - position) }, ...pendingFrom(ledger.lines.slice(index + 1))] };
    }
    position += text.length;
  }
  return { sandboxBytes: sandboxBytes + Math.max(0, held - position), endsInOutput: held > position, pending: [] };
}

function pendingFrom(lines: readonly AgentText[]): { after: number; bytes: Buffer }[] {
  return lines.map((line) => ({ after: line.after, bytes: Buffer.from(line.text) }));
}

/** Inserts after every entry at or before the same place: text written later goes later. */
function insertInOrder<T extends { after: number }>(list: T[], entry: T): void {
  let index = list.length;
  while (index > 0 && list[index - 1]!.after > entry.after) index--;
  list.splice(index, 0, entry);
}
