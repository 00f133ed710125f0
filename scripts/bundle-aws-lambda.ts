// Bundles the AWS webhook receiver (deploy/aws/lambda/handler.ts) into the
// zip the deploy/aws module uploads as a Lambda function: one ESM file,
// index.mjs, with the AWS SDK clients inside (the runtime's own SDK version
// is not ours to choose), for the nodejs22.x runtime, handler
// `index.handler`.
//
// The zip is byte-for-byte the same for the same sources (fixed dates and
// modes), so `tofu plan` shows no change to the function after a rebuild.
//
//   node scripts/bundle-aws-lambda.ts [output.zip]
//
// Prints the zip's path as its last line.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import yazl from 'yazl';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const defaultLambdaPackage = path.join(root, 'deploy', 'aws', 'dist', 'outpost-webhook-handler.zip');

// esbuild's ESM output turns a bundled CommonJS `require('node:https')` into
// a call that throws "Dynamic require … is not supported"; a real `require`
// in scope makes those calls work.
const banner = "import { createRequire as __outpostCreateRequire } from 'node:module';\nconst require = __outpostCreateRequire(import.meta.url);";

/** Builds the bundle; returns index.mjs's text. */
export async function bundleHandler(): Promise<string> {
  const result = await build({
    entryPoints: [path.join(root, 'deploy', 'aws', 'lambda', 'handler.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    // The SDK's ESM builds first: they tree-shake, the CommonJS ones do not.
    mainFields: ['module', 'main'],
    banner: { js: banner },
    legalComments: 'none',
    write: false,
    logLevel: 'warning',
    absWorkingDir: root,
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no output');
  return file.text;
}

async function zip(code: string): Promise<Buffer> {
  const archive = new yazl.ZipFile();
  archive.addBuffer(Buffer.from(code), 'index.mjs', { mtime: new Date(Date.UTC(2000, 0, 1)), mode: 0o100644, compress: true });
  archive.end();
  const chunks: Buffer[] = [];
  for await (const chunk of archive.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function bundleLambdaPackage(output: string = defaultLambdaPackage): Promise<string> {
  const code = await bundleHandler();
  await mkdir(path.dirname(output), { recursive: true });
  await writeFile(output, await zip(code));
  return output;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const output = path.resolve(process.argv[2] ?? defaultLambdaPackage);
  await bundleLambdaPackage(output);
  console.log(output);
}
