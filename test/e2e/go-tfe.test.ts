// HashiCorp's own client for the TFE API, go-tfe, against the real server
// with a real agent running the real OpenTofu: the program of test/go-tfe
// calls go-tfe's common surface (organizations, agent pools, tokens and
// agents, workspaces, configuration versions, runs of every kind, plans,
// applies and their logs, state versions, pages, include=, the media type)
// and checks each answer against what TFE answers. Every check must pass.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { goTfeForTests, runGoTfeCheck, type GoTfeResult } from '../support/go-tfe.ts';
import { databaseBackends } from '../support/postgres.ts';
import { setupCluster, suiteHooks, type Cluster } from '../support/test-cluster.ts';

const goTfe = goTfeForTests('run go-tfe against the API');

function shown(result: GoTfeResult): string {
  const failures = result.lines.filter((line) => line.startsWith('FAIL '));
  return [`go-tfe-check exited ${result.code}; ${failures.length} failed:`, ...failures, '--- full output', result.output].join('\n');
}

for (const backend of databaseBackends()) {
  describe(`go-tfe against /api/v2 (${backend})`, { skip: goTfe.skip }, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    before(async () => {
      // Two jobs at a time: a run being canceled still holds its slot
      // while the engine stops, and the next check's run need not wait.
      cluster = await setupCluster(hooks, backend, { concurrency: 2 });
    });

    // The program's checks run one after another, a dozen of them with real
    // runs; its own deadline (five minutes a check) bounds each.
    test('every go-tfe check passes', { timeout: 20 * 60_000 }, async (t) => {
      const result = await runGoTfeCheck(t, goTfe.binary!, { address: cluster.server.url, token: cluster.server.adminToken, poolId: cluster.pool.id });
      const why = `${shown(result)}\n${await cluster.diagnostics()}`;
      assert.equal(result.code, 0, why);
      assert.ok(result.summary, `no JSON summary on the last line\n${why}`);
      assert.equal(result.summary.failed, 0, why);
      assert.ok(result.summary.total > 0 && result.summary.passed === result.summary.total, why);
      assert.equal(result.lines.length, result.summary.total, `one line per check\n${why}`);
    });
  });
}
