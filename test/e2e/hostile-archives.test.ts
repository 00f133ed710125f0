// Hostile configuration archives and invalid HCL through the whole system:
// uploaded to the real server, claimed by a real agent, extracted by the job
// operation, (for HCL) handed to the real OpenTofu. Each archive is written
// byte by byte (test/support/security-checks.ts), since no honest tar tool produces
// `../` names, absolute names or links that point out of the tree.
//
// For each: the run ends `errored` with the catalogue code of the problem,
// the plan log names the offending entry, the engine never ran, and nothing
// was written outside the job directory: the files the archive aims at do
// not exist, victims planted outside are untouched, and no file with the
// archive's unique marker exists anywhere in the agent's or server's dirs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import type { ErrorCode } from '../../src/protocol/errors.ts';
import { databaseBackends } from '../support/postgres.ts';
import { apiCall, createRun, relatedId, readLog, runLogs, type Resource, type Run } from '../support/api-calls.ts';
import { outputsFromApplyLog } from '../support/log-checks.ts';
import { setupCluster, suiteHooks, type Cluster } from '../support/test-cluster.ts';
import { findNamesContaining, hostileTarGz, type TarEntry } from '../support/security-checks.ts';

const MiB = 1024 * 1024;
/** OUTPOST_AGENT_MAX_ARCHIVE_MB of the agent: archives may expand to 1 MiB. */
const agentArchiveLimitMb = 1;
const tmp = os.tmpdir();
/** Enough `..` to climb from a job directory (below the temp dir) to `/`. */
const climb = '../'.repeat(tmp.split('/').length + 8);

const validMain = 'output "ok" {\n  value = "this run should never get this far"\n}\n';

interface HostileCase {
  readonly name: string;
  readonly code: ErrorCode;
  /** What the plan log must name: the offending entry. */
  readonly names: string;
  /** Entries, given a unique marker and the paths of victims planted outside. */
  readonly entries: (marker: string, victims: Victims) => TarEntry[];
  /** Paths that must not exist afterwards. */
  readonly mustNotExist?: (marker: string) => string[];
}

interface Victims {
  /** An existing file outside the job, with known content. */
  readonly file: string;
  readonly fileContent: string;
  /** An existing, empty directory outside the job. */
  readonly dir: string;
}

const cases: HostileCase[] = [
  {
    name: 'path traversal: ../evil.tf',
    code: 'archive_path_traversal',
    names: '"../outpost-evil-MARKER.tf"',
    entries: (marker) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'file', name: `../outpost-evil-${marker}.tf`, content: 'resource "evil" "x" {}\n' },
    ],
  },
  {
    name: 'path traversal behind a directory, aimed at /tmp',
    code: 'archive_path_traversal',
    names: `"modules/${climb}${tmp.slice(1)}/outpost-evil-MARKER.tf"`,
    entries: (marker) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'file', name: `modules/${climb}${tmp.slice(1)}/outpost-evil-${marker}.tf`, content: 'evil\n' },
    ],
    mustNotExist: (marker) => [path.join(tmp, `outpost-evil-${marker}.tf`)],
  },
  {
    name: 'path traversal hidden in a PAX extended header',
    code: 'archive_path_traversal',
    names: '"../pax-evil-MARKER.tf"',
    entries: (marker) => [
      { type: 'file', name: 'main.tf', content: validMain },
      // The ustar name looks harmless; the PAX record that overrides it does not.
      { type: 'pax', name: `PaxHeaders/innocent-${marker}.tf`, records: { path: `../pax-evil-${marker}.tf` } },
      { type: 'file', name: `innocent-${marker}.tf`, content: 'evil\n' },
    ],
  },
  {
    name: 'absolute path: /tmp/evil.tf',
    code: 'archive_absolute_path',
    names: `"${tmp}/outpost-evil-MARKER.tf"`,
    entries: (marker) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'file', name: `${tmp}/outpost-evil-${marker}.tf`, content: 'evil\n' },
    ],
    mustNotExist: (marker) => [path.join(tmp, `outpost-evil-${marker}.tf`)],
  },
  {
    name: 'symbolic link to /etc',
    code: 'archive_link_escape',
    names: '"link-MARKER"',
    entries: (marker) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'symlink', name: `link-${marker}`, target: '/etc' },
    ],
  },
  {
    name: 'relative symbolic link out of the tree, then a file written through it',
    code: 'archive_link_escape',
    names: '"up-MARKER"',
    entries: (marker, victims) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'symlink', name: `up-${marker}`, target: `${climb}${victims.dir.slice(1)}` },
      { type: 'file', name: `up-${marker}/outpost-evil-${marker}.tf`, content: 'evil\n' },
    ],
  },
  {
    name: 'hard link to a file outside, then a file written through it',
    code: 'archive_link_escape',
    names: '"hard-MARKER"',
    entries: (marker, victims) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'hardlink', name: `hard-${marker}`, target: victims.file },
      { type: 'file', name: `hard-${marker}`, content: 'overwritten through a hard link\n' },
    ],
  },
  {
    name: 'hard link climbing out with ../',
    code: 'archive_link_escape',
    names: '"hard-MARKER"',
    entries: (marker, victims) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'hardlink', name: `hard-${marker}`, target: `${climb}${victims.file.slice(1)}` },
    ],
  },
  {
    name: 'a fifo',
    code: 'archive_unsupported_entry',
    names: '"fifo-MARKER"',
    entries: (marker) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'fifo', name: `fifo-${marker}` },
    ],
  },
  {
    name: `a file of zeros expanding beyond the agent's ${agentArchiveLimitMb} MiB limit`,
    code: 'archive_too_large',
    names: '"zeros-MARKER.bin"',
    entries: (marker) => [
      { type: 'file', name: 'main.tf', content: validMain },
      { type: 'file', name: `zeros-${marker}.bin`, content: Buffer.alloc(3 * MiB) },
    ],
  },
];

async function uploadArchive(cluster: Cluster, workspaceId: string, archive: Buffer): Promise<string> {
  const created = await apiCall<{ data: Resource<{ 'upload-url': string }> }>(
    cluster.server,
    'POST',
    `/api/v2/workspaces/${workspaceId}/configuration-versions`,
    { data: { type: 'configuration-versions', attributes: {} } },
    201,
  );
  await apiCall(cluster.server, 'PUT', new URL(created.data.attributes['upload-url']).pathname, archive, 200);
  return created.data.id;
}

for (const backend of databaseBackends()) {
  describe(`hostile archives and invalid HCL end to end (${backend})`, () => {
    const hooks = suiteHooks();
    let cluster: Cluster;
    let victims: Victims;

    before(async () => {
      cluster = await setupCluster(hooks, backend, { agentEnv: { OUTPOST_AGENT_MAX_ARCHIVE_MB: String(agentArchiveLimitMb) } });
      const victimRoot = path.join(tmp, `outpost-e2e-victims-${randomBytes(4).toString('hex')}`);
      hooks.after(() => rm(victimRoot, { recursive: true, force: true }));
      await mkdir(path.join(victimRoot, 'dir'), { recursive: true });
      victims = { file: path.join(victimRoot, 'victim.txt'), fileContent: 'original content\n', dir: path.join(victimRoot, 'dir') };
      await writeFile(victims.file, victims.fileContent);
    });

    /** Uploads the archive, runs it, and checks the run failed with `code`; returns the run and its plan log. */
    async function runArchive(archive: Buffer, code: ErrorCode): Promise<{ run: Run; planLog: string }> {
      const workspace = await cluster.createWorkspace();
      const cv = await uploadArchive(cluster, workspace.id, archive);
      const created = await createRun(cluster.server, workspace.id, cv);
      const run = await cluster.waitForRun(created.id, ['errored']);
      const planLog = await readLog(cluster.server, relatedId(run, 'plan'));
      assert.equal(run.attributes['error-code'], code, `error-code of run ${run.id}\n${await cluster.diagnostics(run.id)}`);
      return { run, planLog };
    }

    for (const hostile of cases) {
      test(`${hostile.name}: errored with ${hostile.code}, nothing written outside the job`, async () => {
        const marker = randomBytes(6).toString('hex');
        const archive = hostileTarGz(hostile.entries(marker, victims));
        const { run, planLog } = await runArchive(archive, hostile.code);
        const diagnostics = () => cluster.diagnostics(run.id);

        const named = hostile.names.replaceAll('MARKER', marker);
        assert.ok(planLog.includes(named), `the plan log does not name ${named}:\n${await diagnostics()}`);
        assert.ok(planLog.includes(`[${hostile.code}]`), `the plan log does not give the code ${hostile.code}:\n${planLog}`);
        assert.ok(run.attributes['error-message']?.includes(named), `error-message: ${run.attributes['error-message']}`);
        assert.ok(!/running tofu init/.test(planLog), `the engine ran on a refused archive:\n${planLog}`);

        for (const file of hostile.mustNotExist?.(marker) ?? []) {
          assert.ok(!existsSync(file), `${file} was written outside the job directory`);
        }
        const written = [
          ...(await findNamesContaining(path.dirname(cluster.agents[0]!.dataDir), marker)),
          ...(await findNamesContaining(cluster.server.dataDir, marker)),
          ...(await findNamesContaining(path.dirname(victims.dir), marker)),
          ...(await readdir(tmp)).filter((name) => name.includes(marker)).map((name) => path.join(tmp, name)),
        ];
        assert.deepEqual(written, [], `files of the archive exist outside the job directory\n${await diagnostics()}`);
        assert.equal(await readFile(victims.file, 'utf8'), victims.fileContent, 'the victim file outside the job was changed');
        assert.deepEqual(await readdir(victims.dir), [], 'something was written into the victim directory');
      });
    }

    test('a well-behaved archive with links inside the tree is extracted and applied (control)', async () => {
      const marker = randomBytes(6).toString('hex');
      const archive = hostileTarGz([
        { type: 'directory', name: 'common/' },
        { type: 'file', name: 'common/values.txt', content: marker },
        { type: 'directory', name: 'modules/' },
        { type: 'symlink', name: 'modules/common', target: '../common' },
        { type: 'hardlink', name: 'copy.txt', target: 'common/values.txt' },
        {
          type: 'file',
          name: 'main.tf',
          content: [
            'output "through_symlink" { value = trimspace(file("${path.module}/modules/common/values.txt")) }',
            'output "through_hardlink" { value = trimspace(file("${path.module}/copy.txt")) }',
            '',
          ].join('\n'),
        },
      ]);
      const workspace = await cluster.createWorkspace();
      const run = await createRun(cluster.server, workspace.id, await uploadArchive(cluster, workspace.id, archive));
      const done = await cluster.waitForRun(run.id, ['applied']);
      const logs = await runLogs(cluster.server, done);
      assert.match(logs.plan, /extracted 2 files and 2 links/, logs.plan);
      assert.deepEqual(outputsFromApplyLog(logs.apply), { through_hardlink: marker, through_symlink: marker });
    });

    test('invalid HCL: errored with engine_failed and OpenTofu\'s own error in the plan log', async () => {
      const broken = 'resource "terraform_data" "broken" {\n  input = "unterminated\n\noutput "x" {\n';
      const archive = hostileTarGz([{ type: 'file', name: 'broken.tf', content: broken }]);
      const { run, planLog } = await runArchive(archive, 'engine_failed');
      const diagnostics = await cluster.diagnostics(run.id);
      assert.match(planLog, /running tofu init/, diagnostics);
      assert.match(planLog, /^Error: /m, `no OpenTofu error in the plan log\n${diagnostics}`);
      assert.match(planLog, /on broken\.tf line \d+/, `OpenTofu's error does not point at broken.tf\n${diagnostics}`);
      assert.match(run.attributes['error-message'] ?? '', /tofu init/, `error-message: ${run.attributes['error-message']}`);

      // The workspace is not stuck: a valid configuration runs after it.
      const fixed = hostileTarGz([{ type: 'file', name: 'main.tf', content: 'output "ok" { value = "fixed" }\n' }]);
      const workspaceId = relatedId(run, 'workspace');
      const next = await createRun(cluster.server, workspaceId, await uploadArchive(cluster, workspaceId, fixed));
      await cluster.waitForRun(next.id, ['applied', 'planned_and_finished']);
    });
  });
}
