// Buffers in order, taken from the front without copying the rest: the log
// shipper's backlog, where the front chunk may be in flight while the engine
// keeps appending behind it.
const empty = Buffer.alloc(0);

export class ByteQueue {
  #items: Buffer[] = [];
  #first = 0;
  bytes = 0;

  push(data: Buffer): void {
    this.#items.push(data);
    this.bytes += data.length;
  }

  /** Up to `limit` bytes from the front, copied only when they span buffers. */
  peek(limit: number): Buffer {
    const head = this.#items[this.#first];
    if (!head) return empty;
    if (head.length >= limit || this.#first === this.#items.length - 1) return head.subarray(0, limit);
    const parts: Buffer[] = [];
    let taken = 0;
    for (let index = this.#first; index < this.#items.length && taken < limit; index++) {
      const part = this.#items[index]!.subarray(0, limit - taken);
      parts.push(part);
      taken += part.length;
    }
    return Buffer.concat(parts, taken);
  }

  /** Removes `count` bytes from the front. */
  drop(count: number): void {
    let left = Math.min(count, this.bytes);
    this.bytes -= left;
    while (left > 0) {
      const head = this.#items[this.#first]!;
      if (head.length <= left) {
        left -= head.length;
        this.#items[this.#first++] = empty;
      } else {
        this.#items[this.#first] = head.subarray(left);
        left = 0;
      }
    }
    // Compact now and then so the array does not grow without end.
    if (this.#first > 1024 && this.#first * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Removes everything, returning the buffers in order. */
  takeAll(): Buffer[] {
    const all = this.#items.slice(this.#first);
    this.#items = [];
    this.#first = 0;
    this.bytes = 0;
    return all;
  }
}
