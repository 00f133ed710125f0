// The Lambda function's code as it ships: `index.mjs` read out of the zip
// scripts/bundle-aws-lambda.ts writes, so tests run exactly what AWS would.
import { promisify } from 'node:util';
import yauzl from 'yauzl';

export async function lambdaIndexOf(zipFile: string): Promise<Buffer> {
  const zip = await promisify<string, yauzl.Options, yauzl.ZipFile>(yauzl.open)(zipFile, { lazyEntries: false });
  return new Promise<Buffer>((resolve, reject) => {
    let found = false;
    zip.on('error', reject);
    // 'end' means every entry was seen, not that a stream opened from one has been read.
    zip.on('end', () => found || reject(new Error('index.mjs is not in the zip')));
    zip.on('entry', (entry: yauzl.Entry) => {
      if (entry.fileName !== 'index.mjs') return;
      found = true;
      zip.openReadStream(entry, async (error, stream) => {
        if (error) return reject(error);
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        resolve(Buffer.concat(chunks));
      });
    });
  });
}
