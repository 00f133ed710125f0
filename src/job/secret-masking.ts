// Replaces the values of sensitive variables with *** in text streamed to the
// run log. Output arrives in arbitrary chunks, so a secret may be split across
// two of them: the masker holds back the last (longest secret - 1) characters
// until the next chunk (or the end) shows whether they start a secret.

export const secretMask = '***';

/**
 * Values shorter than this are not masked: replacing every "on", "1" or "yes"
 * in the log would shred it while protecting nothing (such a value is
 * guessable anyway). The run's variables page tells users about this limit.
 */
export const minimumMaskedLength = 4;

export class SecretMasker {
  readonly #secrets: readonly string[];
  readonly #holdBack: number;
  #pending = '';

  constructor(values: Iterable<string>) {
    const unique = new Set([...values].filter((value) => value.length >= minimumMaskedLength));
    // Longest first, so a secret that contains another is masked as a whole.
    this.#secrets = [...unique].sort((a, b) => b.length - a.length);
    this.#holdBack = this.#secrets.length === 0 ? 0 : (this.#secrets[0]?.length ?? 1) - 1;
  }

  /** Masks a chunk; returns the part that can be printed now. */
  push(chunk: string): string {
    if (this.#secrets.length === 0) return chunk;
    const masked = this.#mask(this.#pending + chunk);
    // Any secret starting before the cut ends inside `masked`, so it was
    // replaced above; only a secret starting in the held tail can be partial.
    const cut = Math.max(0, masked.length - this.#holdBack);
    this.#pending = masked.slice(cut);
    return masked.slice(0, cut);
  }

  /** Returns what is still held back; call when the stream ends. */
  flush(): string {
    const rest = this.#mask(this.#pending);
    this.#pending = '';
    return rest;
  }

  /** Masks a complete text in one go (for messages that are not streamed). */
  maskText(text: string): string {
    return this.#mask(text);
  }

  #mask(text: string): string {
    let result = text;
    for (const secret of this.#secrets) {
      if (result.includes(secret)) result = result.split(secret).join(secretMask);
    }
    return result;
  }
}
