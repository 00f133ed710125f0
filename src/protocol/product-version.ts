// Outpost's version (the package's), read once: agents register with it and
// the server names it in its API headers. The build compiles src/ into dist/
// at the same depth, so package.json is two directories up from both.
import { readFileSync } from 'node:fs';

export const productVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
