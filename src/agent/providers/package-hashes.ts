// The two package hash schemes OpenTofu and Terraform record in lock files and
// accept from network mirrors: `zh:` is the SHA-256 of the zip file itself,
// `h1:` is Go's dirhash "h1" over the zip's entries (sorted names, each with
// the SHA-256 of its content), which is what a lock file usually holds for the
// platform init ran on. Computing both lets the mirror verify a package
// whichever one an upstream gives, and hand both to the engine.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type yauzl from 'yauzl';

export interface PackageHashes {
  zh: string;
  /** Computed only when needed (an upstream that vouches with h1: alone): it means unpacking the zip. */
  h1?: string | undefined;
}

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Both hashes of a package zip; `sha256` when the caller already hashed the file while writing it. */
export async function packageHashes(file: string, sha256?: string): Promise<Required<PackageHashes>> {
  const [zip, h1] = await Promise.all([sha256 ?? fileSha256(file), dirhashOfZip(file)]);
  return { zh: `zh:${zip}`, h1 };
}

/** Whether the package's hashes include one of `expected` (hashes of a scheme we do not know are ignored). */
export function matchesAnyHash(hashes: PackageHashes, expected: readonly string[]): boolean {
  return expected.some((hash) => hash === hashes.zh || hash === hashes.h1);
}

/** dirhash.HashZip(file, dirhash.Hash1) as Go's golang.org/x/mod computes it: every entry, directories included. */
async function dirhashOfZip(file: string): Promise<string> {
  // Loaded on the first package hashed, not with the agent.
  const { default: yauzl } = await import('yauzl');
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: false }, (error, opened) => (error ? reject(error) : resolve(opened))),
  );
  try {
    const lines: [string, string][] = [];
    for (let entry = await nextEntry(zip); entry !== undefined; entry = await nextEntry(zip)) {
      if (entry.fileName.includes('\n')) throw new Error('the package has a file name with a newline');
      lines.push([entry.fileName, await entrySha256(zip, entry)]);
    }
    // Go's sort.Strings orders by bytes, which for UTF-8 is code point order.
    lines.sort(([a], [b]) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
    const summary = createHash('sha256');
    for (const [name, hex] of lines) summary.update(`${hex}  ${name}\n`);
    return `h1:${summary.digest('base64')}`;
  } finally {
    zip.close();
  }
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const onEntry = (entry: yauzl.Entry) => { cleanup(); resolve(entry); };
    const onEnd = () => { cleanup(); resolve(undefined); };
    const onError = (error: Error) => { cleanup(); reject(error); };
    const cleanup = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

async function entrySha256(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<string> {
  const hash = createHash('sha256');
  if (entry.uncompressedSize > 0) {
    const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
      zip.openReadStream(entry, (error, opened) => (error ? reject(error) : resolve(opened))),
    );
    for await (const chunk of stream) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
