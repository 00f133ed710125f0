#!/usr/bin/env node
// Entry point of the installed `outpost` command (and of the images). It runs
// the compiled JavaScript in dist/ (`npm run build`, which `npm ci` runs
// through `prepare`): Node's type stripping of the TypeScript sources would
// cost every server, agent and CLI process about 17 MiB and 0.1 s more.
// Node's compile cache (in the OS temp dir) keeps the modules' bytecode for
// the next start; where it cannot be written, Node runs without it.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

const main = import.meta.resolve('../dist/cli/main.js');
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(`outpost: ${fileURLToPath(main)} is missing: build it with \`npm run build\` (\`npm ci\` builds too)\n`);
  process.exit(1);
}
module.enableCompileCache();
await import(main);
