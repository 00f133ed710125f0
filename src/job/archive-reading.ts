// Reads a .tar.gz one entry at a time, counting decompressed bytes as they
// come so a gzip bomb is stopped after `maxBytes`, not after filling the disk
// or memory. We decompress ourselves (node-tar would too, but then nothing
// counts its output) and refuse data that is compressed a second time,
// because node-tar would silently decompress that inner layer uncounted.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { OutpostError } from '../protocol/errors.ts';
import { describeEntry } from './archive-tree.ts';
import { formatByteSize } from './byte-size.ts';

/**
 * Called for each entry in archive order; the next entry is read only after
 * the returned promise settles. It must consume the entry's body (pipe it
 * somewhere or call `resume()`), or reading stalls, and stop when `aborted`
 * fires: after a failure the rest of a body never arrives.
 */
export type EntryVisitor = (entry: ReadEntry, aborted: AbortSignal) => Promise<void>;

const gzipMagic = Buffer.from([0x1f, 0x8b]);
const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

export async function readTarGz(file: string, maxBytes: number, visit: EntryVisitor): Promise<void> {
  // strict: a bad checksum or truncated archive is an error, not a warning.
  const parser = new Parser({ strict: true });
  let failure: unknown;
  const abort = new AbortController();
  let rejectFailed: (error: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    rejectFailed = reject;
  });
  failed.catch(() => {}); // observed through Promise.race below
  const fail = (error: unknown): void => {
    if (failure !== undefined) return;
    failure = error;
    abort.abort(error);
    rejectFailed(error);
  };

  let visits: Promise<void> = Promise.resolve();
  let currentEntry: string | undefined;
  parser.on('entry', (entry: ReadEntry) => {
    currentEntry = entry.path;
    visits = visits.then(async () => {
      if (failure !== undefined) {
        entry.resume();
        return;
      }
      try {
        await visit(entry, abort.signal);
      } catch (error) {
        entry.resume();
        fail(error);
      }
    });
  });
  // node-tar skips entries of unknown types (and oversized metadata) instead of emitting them.
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    fail(new OutpostError('archive_unsupported_entry', `archive entry ${describeEntry(entry.path)} has an unsupported type (${entry.type})`));
  });
  parser.on('error', (error: Error) => fail(invalidArchive(error)));
  const parsed = new Promise<void>((resolve) => parser.on('end', () => resolve()));

  let expanded = 0;
  let head = Buffer.alloc(0);
  try {
    await pipeline(createReadStream(file), createGunzip(), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        if (failure !== undefined) break;
        expanded += chunk.length;
        if (head.length < zstdMagic.length) {
          head = Buffer.concat([head, chunk]).subarray(0, zstdMagic.length);
          if (startsWith(head, gzipMagic) || startsWith(head, zstdMagic)) {
            throw new OutpostError('archive_invalid', 'the configuration archive is compressed twice; upload a .tar.gz');
          }
        }
        // Checked after handing the chunk over (one chunk is a few KiB), so the
        // message can name the entry being read when the limit is crossed.
        const writable = parser.write(chunk);
        if (expanded > maxBytes) {
          const where = currentEntry === undefined ? '' : ` (at ${describeEntry(currentEntry)})`;
          throw new OutpostError('archive_too_large', `the configuration expands to more than ${formatByteSize(maxBytes)}${where}`);
        }
        if (!writable) {
          await Promise.race([new Promise((resolve) => parser.once('drain', resolve)), failed]);
        }
      }
      if (failure === undefined) {
        parser.end();
        await Promise.race([parsed, failed]);
      }
    });
  } catch (error) {
    fail(error instanceof OutpostError ? error : invalidArchive(error));
  }
  await visits;
  if (failure !== undefined) throw failure;
}

function startsWith(buffer: Buffer, prefix: Buffer): boolean {
  return buffer.length >= prefix.length && buffer.subarray(0, prefix.length).equals(prefix);
}

function invalidArchive(error: unknown): OutpostError {
  if (error instanceof OutpostError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new OutpostError('archive_invalid', `the configuration archive is not a valid .tar.gz (${message})`);
}
