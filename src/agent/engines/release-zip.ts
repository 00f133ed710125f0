// Taking the engine executable out of a release zip. Only one top-level
// regular file, named exactly like the binary, is ever written: every other
// entry (README, LICENSE, anything with a directory part, `..`, or a link) is
// ignored, so a crafted archive cannot write anywhere else.
import { createWriteStream } from 'node:fs';
import { chmod, open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type yauzl from 'yauzl';

export class ReleaseZipInvalid extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReleaseZipInvalid';
  }
}

const fileTypeMask = 0o170000;
const regularFile = 0o100000;

/** Writes the zip entry named `binaryName` to `target` (a new file), mode 0755. */
export async function extractBinary(zipPath: string, binaryName: string, target: string): Promise<void> {
  // Loaded on the first engine download, not with the agent.
  const { default: yauzl } = await import('yauzl');
  let zip: yauzl.ZipFile;
  try {
    // strictFileNames: a `\` in a name is an error, not a path separator in disguise.
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, strictFileNames: true });
  } catch (error) {
    throw new ReleaseZipInvalid(`the release zip cannot be read: ${(error as Error).message}`);
  }
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName !== binaryName) continue;
      // Zips made on Unix keep the file type in the high bits; zero means "not recorded".
      const type = (entry.externalFileAttributes >>> 16) & fileTypeMask;
      if (type !== 0 && type !== regularFile) {
        throw new ReleaseZipInvalid(`the release zip entry ${binaryName} is not a regular file`);
      }
      const stream = await zip.openReadStreamPromise(entry);
      await pipeline(stream, createWriteStream(target, { flags: 'wx', mode: 0o755 }));
      await chmod(target, 0o755); // the umask may have narrowed the mode given at creation
      await flushToDisk(target);
      return;
    }
  } catch (error) {
    if (error instanceof ReleaseZipInvalid) throw error;
    throw new ReleaseZipInvalid(`the release zip cannot be read: ${(error as Error).message}`);
  } finally {
    zip.close();
  }
  throw new ReleaseZipInvalid(`the release zip has no ${binaryName} executable at its top level`);
}

// The entry is renamed into place next; without fsync a power loss could
// leave a published name pointing at an empty or partial file.
async function flushToDisk(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
