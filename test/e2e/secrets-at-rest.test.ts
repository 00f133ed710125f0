// Sensitive variable values are sealed in the database: the SQLite files
// (database and write-ahead log) never contain them, while the job still
// receives the real value (the engine writes it into the state it saves,
// which is where Terraform keeps values by design).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { createRun, createVariable, currentStateVersion, downloadState, uploadConfiguration } from '../support/api-calls.ts';
import { setupCluster } from '../support/test-cluster.ts';
import { waitForRunStatus } from '../support/waits.ts';

test('a sensitive variable is sealed at rest and reaches the job in clear', async (t) => {
  const cluster = await setupCluster(t, 'sqlite');
  const { server, workspace } = cluster;
  const secret = `secret-${randomBytes(12).toString('hex')}`;
  await createVariable(server, workspace.id, { key: 'password', value: secret, category: 'terraform', sensitive: true });
  // A variable made sensitive later, with its new value, is sealed too.
  await createVariable(server, workspace.id, { key: 'later', value: 'not a secret yet', category: 'terraform' });
  const vars = await server.api<{ data: { id: string; attributes: { key: string } }[] }>('GET', `/api/v2/workspaces/${workspace.id}/vars`);
  const later = vars.body.data.find((v) => v.attributes.key === 'later');
  assert.ok(later);
  const patched = await server.api('PATCH', `/api/v2/workspaces/${workspace.id}/vars/${later.id}`, { data: { type: 'vars', attributes: { sensitive: true, value: `${secret}-later` } } });
  assert.equal(patched.status, 200);

  const cv = await uploadConfiguration(server, workspace.id, {
    'main.tf': [
      'variable "password" {',
      '  type      = string',
      '  sensitive = true',
      '}',
      'variable "later" {',
      '  type      = string',
      '  sensitive = true',
      '}',
      'resource "terraform_data" "uses" {',
      '  input = sha256("${var.password}/${var.later}")',
      '}',
      'output "password" {',
      '  value     = var.password',
      '  sensitive = true',
      '}',
      'output "later" {',
      '  value     = var.later',
      '  sensitive = true',
      '}',
    ].join('\n'),
  });
  const run = await createRun(server, workspace.id, cv);
  await waitForRunStatus(server, run.id, ['applied'], 60_000);
  const version = await currentStateVersion(server, workspace.id);
  assert.ok(version);
  const state = await downloadState(server, version.id);
  assert.equal(state.outputs.password?.value, secret, 'the job received the opened value');
  assert.equal(state.outputs.later?.value, `${secret}-later`);

  let sealedSeen = false;
  for (const name of await readdir(server.dataDir)) {
    if (!name.startsWith('outpost.db')) continue;
    const bytes = await readFile(path.join(server.dataDir, name));
    assert.ok(!bytes.includes(secret), `${name} contains a sensitive value in clear`);
    sealedSeen ||= bytes.includes('sealed:v1:');
  }
  assert.ok(sealedSeen, 'the database holds the sealed values');
});
