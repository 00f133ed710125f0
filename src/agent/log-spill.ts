// A job's log output that does not fit the shipper's memory bound while the
// control plane is slow or unreachable: appended to one file next to the
// job's directory and read back from the front, in order, once the server
// takes chunks again. Synchronous on purpose: a spill happens only during an
// outage with a large backlog, the writes are the engine's output chunks
// (kilobytes), and doing them in call order keeps the bytes in order with no
// queue of pending writes to reason about.
import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';

export class LogSpill {
  readonly #file: string;
  readonly #limitBytes: number;
  #fd: number | undefined;
  /** Bytes written since the file was last emptied, and how many of them were read back. */
  #written = 0;
  #read = 0;

  constructor(file: string, limitBytes: number) {
    this.#file = file;
    this.#limitBytes = limitBytes;
  }

  /** Bytes in the file not read back yet. */
  get bytes(): number {
    return this.#written - this.#read;
  }

  /** Appends `data`; false when the file is full or cannot be written (the caller keeps the bytes some other way). */
  append(data: Buffer): boolean {
    if (this.#written + data.length > this.#limitBytes) return false;
    try {
      this.#fd ??= openSync(this.#file, 'w+', 0o600);
      for (let done = 0; done < data.length; ) done += writeSync(this.#fd, data, done, data.length - done, this.#written + done);
    } catch {
      // A full or read-only disk: the bytes written past #written are ignored.
      return false;
    }
    this.#written += data.length;
    return true;
  }

  /** Reads up to `limit` bytes from the front; they are no longer in the file's count. Throws if the file cannot be read. */
  take(limit: number): Buffer {
    const length = Math.min(limit, this.bytes);
    const data = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; ) {
      const got = readSync(this.#fd!, data, done, length - done, this.#read + done);
      if (got === 0) throw new Error(`the log spill file ${this.#file} is shorter than written`);
      done += got;
    }
    this.#read += length;
    if (this.bytes === 0) this.#empty();
    return data;
  }

  /** Drops `count` bytes from the front without reading them. */
  skip(count: number): void {
    this.#read += Math.min(count, this.bytes);
    if (this.bytes === 0) this.#empty();
  }

  /** Forgets what is left (it could not be read back). */
  discard(): void {
    this.#empty();
  }

  /** Closes and deletes the file. */
  remove(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#written = 0;
    this.#read = 0;
    rmSync(this.#file, { force: true });
  }

  /** Everything was read back: start over at the beginning, so the file does not grow across outages. */
  #empty(): void {
    this.#written = 0;
    this.#read = 0;
    if (this.#fd === undefined) return;
    try {
      ftruncateSync(this.#fd, 0);
    } catch {
      // Writing from offset 0 again overwrites whatever stayed.
    }
  }
}
