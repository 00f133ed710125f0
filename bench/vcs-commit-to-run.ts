// Commit to run: how long after a push to a workspace's branch its run
// exists, when the forge's webhook drives it (Gitea → the server verifies
// the delivery, fetches the commit by sha, packs it, queues the run), against
// doing the same by hand as a CI job would (shallow clone over HTTPS, pack
// the tree, create a configuration version, upload it, create the run).
// Per commit:
//
//   webhook:  the run's created-at − the moment the push returned
//             (and, inside the server, created-at − the delivery's received-at)
//   by hand:  the API's answer to "create run" − the moment the script began
//
// A real Gitea on loopback (OUTPOST_TEST_GITEA, scripts/build-gitea.sh), a
// repository of BENCH_VCS_FILES (default 200) files of 1 KiB beside main.tf,
// one server (SQLite) with no agent (runs stay queued: only getting to the
// run is measured), BENCH_VCS_RUNS (default 10) commits each, alternating.
// Skipped, with the reason, without Gitea.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { create as createTar } from 'tar';
import type { Run, VcsDelivery } from '../src/protocol/api-resources.ts';
import { apiCall, createPool, createWorkspace } from '../test/support/api-calls.ts';
import { startServer } from '../test/support/cluster.ts';
import { giteaForTests, startGitea } from '../test/support/gitea.ts';
import { createVcsProvider, linkRepository, waitForRunOfCommit } from '../test/support/vcs-calls.ts';
import { printTable, summarize, type Hooks } from './measure.ts';

const run = promisify(execFile);
const runs = Number(process.env.BENCH_VCS_RUNS ?? 10);
const fileCount = Number(process.env.BENCH_VCS_FILES ?? 200);

function configuration(label: string): Record<string, string> {
  const files: Record<string, string> = { 'main.tf': `output "label" {\n  value = "${label}"\n}\n` };
  for (let i = 0; i < fileCount; i++) files[`modules/m${i % 10}/file-${i}.txt`] = `${'x'.repeat(1023)}\n`;
  return files;
}

/** What a CI job does without VCS integration: clone, pack, upload, queue. Returns ms until the run exists. */
async function byHand(server: Awaited<ReturnType<typeof startServer>>, workspaceId: string, cloneUrl: string, token: string): Promise<number> {
  const started = performance.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-bench-clone-'));
  try {
    const header = `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
    await run('git', ['-c', `http.extraHeader=${header}`, 'clone', '--quiet', '--depth=1', '--branch=main', cloneUrl, dir], { env: { PATH: process.env.PATH ?? '', HOME: dir, GIT_TERMINAL_PROMPT: '0' } });
    const chunks: Buffer[] = [];
    for await (const chunk of createTar({ cwd: dir, gzip: true, portable: true, filter: (entry) => !entry.split('/').includes('.git') }, ['.'])) chunks.push(Buffer.from(chunk as Uint8Array));
    const cv = await apiCall<{ data: { id: string; attributes: { 'upload-url': string } } }>(server, 'POST', `/api/v2/workspaces/${workspaceId}/configuration-versions`, { data: { type: 'configuration-versions' } }, 201);
    const upload = await fetch(cv.data.attributes['upload-url'], { method: 'PUT', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array(Buffer.concat(chunks)) });
    if (!upload.ok) throw new Error(`upload: HTTP ${upload.status}`);
    await apiCall<{ data: Run }>(server, 'POST', '/api/v2/runs', {
      data: { type: 'runs', attributes: { message: 'by hand' }, relationships: { workspace: { data: { type: 'workspaces', id: workspaceId } }, 'configuration-version': { data: { type: 'configuration-versions', id: cv.data.id } } } },
    }, 201);
    return performance.now() - started;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function vcsCommitToRun(hooks: Hooks): Promise<Record<string, unknown>> {
  const gitea = giteaForTests('run the commit-to-run benchmark', { ...process.env, CI: 'false' });
  if (gitea.skip) {
    process.stdout.write(`commit to run: skipped, ${gitea.skip}\n\n`);
    return { skipped: gitea.skip };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-bench-gitea-'));
  const forge = await startGitea({ binary: gitea.binary!, dir });
  hooks.after(async () => {
    await forge.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const server = await startServer({ backend: 'sqlite', t: hooks });
  const pool = await createPool(server);
  const viaWebhook = await createWorkspace(server, { poolId: pool.id, autoApply: false });
  const manual = await createWorkspace(server, { poolId: pool.id, autoApply: false });
  const repo = await forge.createRepo('bench');
  await forge.pushFiles(repo.fullName, 'main', configuration('0'), 'Initial');
  const provider = await createVcsProvider(server, { name: 'gitea', kind: 'gitea', 'http-url': forge.url, token: forge.token });
  await linkRepository(server, viaWebhook.id, { 'vcs-repo': { identifier: repo.fullName, branch: 'main', 'vcs-provider-id': provider.id } });
  await forge.addWebhook(repo.fullName, { url: provider.webhookUrl!, secret: provider.webhookSecret });

  const webhook: number[] = [];
  const inServer: number[] = [];
  const manualMs: number[] = [];
  for (let i = 1; i <= runs; i++) {
    const sha = await forge.pushFiles(repo.fullName, 'main', { 'main.tf': `output "label" {\n  value = "${i}"\n}\n` }, `Commit ${i}`);
    const pushed = Date.now();
    const queued = await waitForRunOfCommit(server, viaWebhook.id, sha, { timeoutMs: 60_000 });
    const created = Date.parse(queued.attributes['created-at']);
    webhook.push(created - pushed);
    const deliveries = (await apiCall<{ data: VcsDelivery[] }>(server, 'GET', `/api/v2/vcs-providers/${provider.id}/deliveries?page%5Bsize%5D=1`, undefined, 200)).data;
    inServer.push(created - Date.parse(deliveries[0]!.attributes['received-at']));
    manualMs.push(await byHand(server, manual.id, repo.cloneUrl, forge.token));
  }
  printTable(`commit to run: push → the run exists (ms), ${runs} commits each, a repository of ${fileCount + 1} files`, [
    ['webhook (Gitea → server fetches the commit)', summarize(webhook)],
    ['  of which inside the server (delivery → run)', summarize(inServer)],
    ['by hand (clone --depth 1, pack, upload, create run)', summarize(manualMs)],
  ]);
  return { runs, files: fileCount + 1, webhook, inServer, byHand: manualMs };
}
