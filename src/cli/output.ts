// Where command results go. Results go to stdout; progress, hints and
// warnings to stderr, so `outpost … > file` captures only the result. With
// --json a command prints the API's `data` and nothing else on stdout.
import { formatFields, formatTable } from './table.ts';

export interface OutputStream {
  write(chunk: string | Uint8Array): unknown;
  readonly isTTY?: boolean;
}

export interface InputStream extends NodeJS.ReadableStream {
  readonly isTTY?: boolean;
}

/** The process's standard streams, injectable so tests can capture them. */
export interface Terminal {
  readonly stdin: InputStream;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
}

export class Output {
  readonly terminal: Terminal;
  readonly json: boolean;

  constructor(terminal: Terminal, json: boolean) {
    this.terminal = terminal;
    this.json = json;
  }

  get stdoutIsTerminal(): boolean {
    return this.terminal.stdout.isTTY === true;
  }

  /** Machine-readable result: the JSON:API data, pretty-printed. */
  data(value: unknown): void {
    this.terminal.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A line of human-readable result on stdout. */
  line(text = ''): void {
    this.terminal.stdout.write(`${text}\n`);
  }

  /** Progress, hints and warnings: stderr, so they never pollute a captured result. */
  note(text = ''): void {
    this.terminal.stderr.write(`${text}\n`);
  }

  table(headers: readonly string[], rows: readonly (readonly string[])[]): void {
    if (rows.length === 0 && this.stdoutIsTerminal) {
      this.note('(none)');
      return;
    }
    this.terminal.stdout.write(formatTable(headers, rows, this.stdoutIsTerminal));
  }

  fields(fields: readonly (readonly [string, string])[]): void {
    this.terminal.stdout.write(formatFields(fields));
  }

  /** Prints `data` as JSON in --json mode, otherwise runs the human rendering. */
  result(data: unknown, human: () => void): void {
    if (this.json) this.data(data);
    else human();
  }
}
