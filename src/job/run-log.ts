// The run log as users see it: everything the operation writes to stdout is
// captured by the agent and shown in the run. Outpost's own lines start with
// "Outpost:" so they stand out from the engine's output; every byte passes
// through the secret masker, the engine's output and our own lines alike.
import { SecretMasker } from './secret-masking.ts';

export type LogSink = (text: string) => void;

export class RunLog {
  readonly #sink: LogSink;
  #masker = new SecretMasker([]);
  /** Whether the last text written ended a line (the engine may leave one open). */
  #atLineStart = true;
  #wroteAnything = false;

  constructor(sink: LogSink) {
    this.#sink = sink;
  }

  /** Starts masking these values (once the job's variables are known). */
  maskSecrets(values: Iterable<string>): void {
    this.endEngineOutput();
    this.#masker = new SecretMasker(values);
  }

  /** A step header, e.g. "Outpost: fetching configuration version", after a blank line. */
  step(title: string): void {
    this.endEngineOutput();
    if (this.#wroteAnything) this.#write('\n');
    this.info(title);
  }

  info(text: string): void {
    this.endEngineOutput();
    this.#write(this.#masker.maskText(`Outpost: ${text}\n`));
  }

  /** The one line that explains why the job failed. */
  error(message: string, code: string): void {
    this.endEngineOutput();
    this.#write(this.#masker.maskText(`Error: ${message} [${code}]\n`));
  }

  /** Engine output, in arrival order; a chunk may end in the middle of a line or a secret. */
  engineOutput(text: string): void {
    this.#write(this.#masker.push(text));
  }

  /** Prints what the masker still holds back and closes a line the engine left open. */
  endEngineOutput(): void {
    this.#write(this.#masker.flush());
    if (!this.#atLineStart) this.#write('\n');
  }

  #write(text: string): void {
    if (text === '') return;
    this.#sink(text);
    this.#wroteAnything = true;
    this.#atLineStart = text.endsWith('\n');
  }
}
