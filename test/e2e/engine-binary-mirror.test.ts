// The agent's engine binary cache end to end: agents with no local OpenTofu
// (no OUTPOST_AGENT_ENGINE_PATH, none on PATH) download it from a release
// mirror (OUTPOST_AGENT_BINARY_MIRROR), verify it against SHA256SUMS, and
// reuse it: one download per agent data dir, also when two jobs want it at
// the same moment. A zip that does not match its checksum fails the run and
// installs nothing.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ReleaseMirror, sumsPath, zipPath } from '../../src/agent/engines/release-mirror.test-support.ts';
import { startAgent, type AgentHandle, type TestHooks } from '../support/cluster.ts';
import { tofuBinary } from '../support/toolchain.ts';
import { createRun, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import { DownloadGate, filesUnder, quickConfig } from '../support/job-control.ts';

let mirror: ReleaseMirror;
before(async () => {
  mirror = await ReleaseMirror.start();
});
after(() => mirror?.close());

const installedBinary = path.join('opentofu', '1.10.10', 'tofu');

/** An agent that can only get OpenTofu from `mirrorUrl`: no engine path, no tofu on PATH. */
function startMirrorOnlyAgent(t: TestHooks, cluster: Cluster, mirrorUrl: string, env: Record<string, string> = {}): Promise<AgentHandle> {
  return startAgent(cluster.server, {
    token: cluster.pool.token,
    t,
    env: { OUTPOST_AGENT_ENGINE_PATH: '', OUTPOST_AGENT_BINARY_MIRROR: mirrorUrl, PATH: '/usr/bin:/bin', ...env },
  });
}

test('an agent without a local OpenTofu downloads it from the mirror once and reuses it (sqlite)', async (t) => {
  mirror.serveRelease();
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, workspace } = cluster;
  const agent = await startMirrorOnlyAgent(t, cluster, mirror.url);
  cluster.agents.push(agent);

  const first = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('first')));
  await cluster.waitForRun(first.id, ['applied']);
  const planLog = await readLog(server, relatedId(first, 'plan'));
  assert.match(planLog, new RegExp(`Downloading OpenTofu 1\\.10\\.10 from ${mirror.url}${zipPath}`), planLog);
  assert.match(planLog, /Installed OpenTofu 1\.10\.10 \(SHA-256 verified against tofu_1\.10\.10_SHA256SUMS\)/, planLog);
  const applyLog = await readLog(server, relatedId(first, 'apply'));
  assert.match(applyLog, /Using OpenTofu 1\.10\.10 from the agent's binary cache/, applyLog);
  assert.equal(mirror.countOf(zipPath), 1, JSON.stringify(mirror.requests));
  assert.equal(mirror.countOf(sumsPath), 1, JSON.stringify(mirror.requests));
  assert.deepEqual(await filesUnder(path.join(agent.dataDir, 'cache', 'binaries')), [installedBinary]);

  const second = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('second')));
  await cluster.waitForRun(second.id, ['applied']);
  assert.match(await readLog(server, relatedId(second, 'plan')), /Using OpenTofu 1\.10\.10 from the agent's binary cache/);
  assert.equal(mirror.countOf(zipPath), 1, `a second run downloaded again: ${JSON.stringify(mirror.requests)}`);
});

test('two jobs that need the engine at once share one download (sqlite)', async (t) => {
  mirror.serveRelease();
  const gate = await DownloadGate.start(t, mirror.url);
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server } = cluster;
  const other = await cluster.createWorkspace();
  const agent = await startMirrorOnlyAgent(t, cluster, gate.url, { OUTPOST_AGENT_CONCURRENCY: '2' });
  cluster.agents.push(agent);

  const runA = await createRun(server, cluster.workspace.id, await uploadConfiguration(server, cluster.workspace.id, quickConfig('a')));
  const runB = await createRun(server, other.id, await uploadConfiguration(server, other.id, quickConfig('b')));
  // Both plan jobs run; the zip download is held at the gate, so the job
  // that came second finds the first one's download in progress.
  const planIds = [relatedId(runA, 'plan'), relatedId(runB, 'plan')];
  const logs = async (): Promise<string[]> => Promise.all(planIds.map((id) => readLog(server, id)));
  await waitUntil(
    'one job to wait for the download started by the other',
    async () => {
      const [a, b] = await logs();
      const downloading = [a, b].filter((log) => /Downloading OpenTofu 1\.10\.10/.test(log ?? '')).length;
      const waiting = [a, b].filter((log) => /Waiting for the download of OpenTofu 1\.10\.10 started for another job/.test(log ?? '')).length;
      return downloading === 1 && waiting === 1 && gate.held === 1 ? true : undefined;
    },
    async () => `gate holds ${gate.held}; mirror requests ${JSON.stringify(mirror.requests)}\n${(await logs()).join('\n---\n')}\n${await cluster.diagnostics()}`,
  );
  gate.open();

  await cluster.waitForRun(runA.id, ['applied']);
  await cluster.waitForRun(runB.id, ['applied']);
  const [a, b] = await logs();
  assert.match(`${a}\n${b}`, /Using OpenTofu 1\.10\.10 downloaded for another job/, `${a}\n---\n${b}`);
  assert.equal(mirror.countOf(zipPath), 1, JSON.stringify(mirror.requests));
  assert.deepEqual(await filesUnder(path.join(agent.dataDir, 'cache', 'binaries')), [installedBinary]);
});

test('a zip that does not match SHA256SUMS fails the run with engine_checksum_mismatch and installs nothing (sqlite)', async (t) => {
  mirror.serveRelease();
  // The release with one byte changed: same size, wrong checksum.
  const corrupted = path.join(await tempDir(t), 'corrupted.zip');
  const bytes = await readFile(mirror.releaseZip);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle]! + 1) % 256;
  await writeFile(corrupted, bytes);
  mirror.routes.set(zipPath, { status: 200, file: corrupted });

  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, workspace } = cluster;
  // A matching local binary is configured too: a checksum mismatch must not fall back to it.
  const agent = await startMirrorOnlyAgent(t, cluster, mirror.url, { OUTPOST_AGENT_ENGINE_PATH: tofuBinary() });
  cluster.agents.push(agent);

  const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig()));
  const errored = await cluster.waitForRun(run.id, ['errored']);
  assert.equal(errored.attributes['error-code'], 'engine_checksum_mismatch', JSON.stringify(errored.attributes));
  const planLog = await readLog(server, relatedId(run, 'plan'));
  assert.match(planLog, /has SHA-256 [0-9a-f]{64}, but tofu_1\.10\.10_SHA256SUMS lists [0-9a-f]{64}/, planLog);
  assert.match(planLog, /\[engine_checksum_mismatch\]/, planLog);
  assert.doesNotMatch(planLog, /tofu init|Initializing/, planLog);
  assert.equal(mirror.countOf(zipPath), 1, JSON.stringify(mirror.requests));
  assert.deepEqual(await filesUnder(path.join(agent.dataDir, 'cache', 'binaries')), [], 'nothing may be installed or left behind');

  // Once the mirror serves the real release, the same agent installs it.
  mirror.serveRelease();
  const next = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig()));
  await cluster.waitForRun(next.id, ['applied']);
  assert.equal(mirror.countOf(zipPath), 1, JSON.stringify(mirror.requests));
  assert.deepEqual(await filesUnder(path.join(agent.dataDir, 'cache', 'binaries')), [installedBinary]);
});
