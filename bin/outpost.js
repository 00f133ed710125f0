#!/usr/bin/env node
// Entry point of the installed `outpost` command (and of the images). It runs
// the compiled JavaScript in dist/ (`npm run build`, which `npm ci` runs
// through `prepare`): Node's type stripping of the TypeScript sources would
// cost every server, agent and CLI process about 17 MiB and 0.1 s more.
//
// This file must parse and run on old Node versions too, so that they get a
// sentence instead of a stack trace: the version check comes first, and
// everything newer is loaded only after it.
const required = 24;
const running = Number(process.versions.node.split('.')[0]);
if (!(running >= required)) {
  process.stderr.write(
    `Outpost needs Node.js ${required} or newer; this is Node ${process.versions.node}. ` +
      'Run it through `npx outpost` in the project, or install Node 24.\n',
  );
  process.exit(1);
}

const { existsSync } = await import('node:fs');
const { default: module } = await import('node:module');
const { fileURLToPath } = await import('node:url');

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(`outpost: ${fileURLToPath(main)} is missing: build it with \`npm run build\` (\`npm ci\` builds too)\n`);
  process.exit(1);
}
// Node's compile cache (in the OS temp dir) keeps the modules' bytecode for
// the next start; where it cannot be written, Node runs without it.
module.enableCompileCache();
await import(main.href);
