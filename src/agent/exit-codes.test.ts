// docs/cli.md lists the agent's exit codes; operators act on them, so the
// table and the code must say the same.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { agentExitCodes } from './exit-codes.ts';
import { agentVersion } from './agent-version.ts';

const cliDoc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');

/** The `| code | meaning |` rows of the table under `heading`. */
function exitCodeTable(heading: string): Map<number, string> {
  const start = cliDoc.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `docs/cli.md has no "${heading}"`);
  const rows = new Map<number, string>();
  for (const line of cliDoc.slice(start + heading.length + 2).split('\n')) {
    if (line.startsWith('#')) break;
    const match = /^\| (\d+) \| (.+) \|$/.exec(line);
    if (match) rows.set(Number(match[1]), match[2]!);
  }
  return rows;
}

test('docs/cli.md lists exactly the agent\'s exit codes', () => {
  const documented = exitCodeTable('### `outpost agent run`');
  assert.deepEqual([...documented.keys()].sort((a, b) => a - b), Object.values(agentExitCodes).sort((a, b) => a - b));
});

test('the agent registers with the version of its package', () => {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(agentVersion, packageJson.version);
});
