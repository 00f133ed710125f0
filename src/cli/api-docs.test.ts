// node:test's test()/it()/describe() return promises the runner tracks itself.
/* eslint @typescript-eslint/no-floating-promises: ["error", { "allowForKnownSafeCalls": [{ "from": "package", "package": "node:test", "name": ["test", "it", "describe", "suite"] }] }] */
// docs/api.md lists the error catalogue by hand; this keeps the two equal,
// so a new code cannot ship undocumented.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import { errorCatalogue } from '../protocol/errors.ts';

it('docs/api.md lists every error code with its status and title', async () => {
  const docs = await readFile(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const rows = new Set(docs.split('\n').filter((line) => line.startsWith('| `')));
  for (const [code, { status, title }] of Object.entries(errorCatalogue)) {
    assert.ok(rows.has(`| \`${code}\` | ${status} | ${title} |`), `docs/api.md has no row for ${code}`);
  }
});
