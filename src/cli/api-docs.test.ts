// docs/api.md lists the error catalogue by hand; this keeps the two equal
// both ways, so a new code cannot ship undocumented and the docs cannot
// promise a code that no longer exists.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import { errorCatalogue } from '../protocol/errors.ts';

/** The rows of the table under "## Errors" whose first cell is a code. */
async function documentedErrors(): Promise<Map<string, string>> {
  const docs = await readFile(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const section = docs.slice(docs.indexOf('\n## Errors\n'), docs.indexOf('\n## ', docs.indexOf('\n## Errors\n') + 1));
  assert.ok(section.length > 0, 'docs/api.md has no "## Errors" section');
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const match = /^\| `([a-z_]+)` \|/.exec(line);
    if (match) rows.set(match[1]!, line);
  }
  return rows;
}

it('docs/api.md lists every error code with its status and title', async () => {
  const rows = await documentedErrors();
  for (const [code, { status, title }] of Object.entries(errorCatalogue)) {
    assert.equal(rows.get(code), `| \`${code}\` | ${status} | ${title} |`, `docs/api.md's row for ${code} does not match the catalogue`);
  }
});

it('docs/api.md lists no error code that the catalogue does not have', async () => {
  const unknown = [...(await documentedErrors()).keys()].filter((code) => !Object.hasOwn(errorCatalogue, code));
  assert.deepEqual(unknown, [], `docs/api.md documents codes that src/protocol/errors.ts does not define: ${unknown.join(', ')}`);
});
