// The agent's version, as it registers with the control plane (and as
// `outpost agent list` shows it): the package's, read once. The build
// compiles src/ into dist/ at the same depth, so package.json is two
// directories up from both.
import { readFileSync } from 'node:fs';

export const agentVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
