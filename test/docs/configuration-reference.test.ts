// The configuration reference is generated from the settings tables; this
// fails when someone changes a setting without regenerating the docs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configurationReference } from '../../scripts/configuration-reference.ts';

test('docs/configuration.md matches the settings tables (run npm run docs:config)', () => {
  const onDisk = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(onDisk, configurationReference());
});

test('the SCALR_* names of the Scalr agent\'s installation guide are accepted', () => {
  const reference = configurationReference();
  for (const name of [
    'SCALR_URL', 'SCALR_AGENT_TOKEN', 'SCALR_AGENT_NAME', 'SCALR_AGENT_DATA_DIR', 'SCALR_AGENT_DRIVER',
    'SCALR_AGENT_CONCURRENCY', 'SCALR_AGENT_SINGLE', 'SCALR_TOKEN', 'SCALR_DRIVER', 'SCALR_SINGLE',
  ]) {
    assert.ok(reference.includes(`\`${name}\``), `${name} is missing from the agent settings`);
  }
});
