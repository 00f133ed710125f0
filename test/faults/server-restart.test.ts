// What happens to a run when the control plane dies under it (a SIGKILL: no
// drain, connections reset) and is started again on the same port and
// database, against the real server, agent and OpenTofu, on SQLite and
// PostgreSQL (docs/reliability.md, "Control plane restarts and outages"):
//
// - an apply that prints numbered lines before, during and after the outage
//   completes, and its stored log holds every line exactly once, in order,
//   byte for byte as the engine printed it: the agent buffered what it could
//   not ship and resent from the server's confirmed size;
// - a plan whose operation uploads its plan and reports its result while the
//   server is down (longer than the operation's old 15 s retry budget)
//   delivers both once the server is back;
// - an apply that FINISHES while the server is down (the engine's last state
//   save, the operation's result, the agent's finish and the end of the log
//   all fall in the outage) is delivered once the server is back, and the run
//   is applied with the state the engine saved.
//
// The lease is short (5 s, heartbeats every second) so the test also proves
// the agent does not give up its job over heartbeats that failed during the
// outage: the server gives agents a lease timeout after it starts before it
// judges leases, and the agent's heartbeats resume within that.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { databaseBackends } from '../support/postgres.ts';
import { createRun, currentStateVersion, downloadState, getRun, readLog, relatedId, uploadConfiguration, type Run } from '../support/api-calls.ts';
import { tempDir } from '../support/files.ts';
import { setupCluster, type Cluster } from '../support/test-cluster.ts';
import { waitUntil } from '../support/waits.ts';
import { HeldEndpoint, jobDirectoryPattern, killLeftoversAfter, planTimeReadConfig, waitForLog } from '../support/job-control.ts';

const serverEnv = {
  OUTPOST_LEASE_TIMEOUT: '5s',
  OUTPOST_SWEEP_INTERVAL: '500ms',
  OUTPOST_AGENT_HEARTBEAT_INTERVAL: '1s',
};

/** Long-ish lines, so the log spans many chunks and a lost or doubled byte breaks a line. */
const padding = 'x'.repeat(120);

/** What the engine prints for line `n` of the provisioner. */
function numberedLine(n: number): string {
  return `terraform_data.numbered (local-exec): line ${String(n).padStart(4, '0')} ${padding}`;
}

/**
 * One resource whose local-exec provisioner prints `lines` numbered lines,
 * `intervalS` apart, then creates `doneFile` (so the test knows the engine
 * has nothing left to print but its summary).
 */
function numberedApplyConfig(lines: number, intervalS: string, doneFile: string): Record<string, string> {
  return {
    'main.tf': [
      'resource "terraform_data" "numbered" {',
      '  input = "numbered"',
      '  provisioner "local-exec" {',
      '    command = <<-EOT',
      `      i=1; while [ $i -le ${lines} ]; do printf 'line %04d ${padding}\\n' $i; sleep ${intervalS}; i=$((i+1)); done; touch '${doneFile}'`,
      '    EOT',
      '  }',
      '}',
      '',
    ].join('\n'),
  };
}

/**
 * The numbered section of the stored log, from the first numbered line to
 * the end of the last, without the engine's own "Still creating..." progress
 * lines (printed every 10 s, between provisioner lines).
 */
function numberedSection(log: string): string {
  const first = log.indexOf(numberedLine(1));
  assert.ok(first >= 0, `no first numbered line in the log:\n${log}`);
  const lines = log.slice(first).split('\n');
  const last = lines.findLastIndex((line) => line.includes('(local-exec): line '));
  return lines
    .slice(0, last + 1)
    .filter((line) => !/: Still creating\.\.\. \[/.test(line))
    .join('\n');
}

function expectedSection(lines: number): string {
  return Array.from({ length: lines }, (_, index) => numberedLine(index + 1)).join('\n');
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, `${pattern.flags}g`))?.length ?? 0;
}

async function assertAppliedWithFullLog(cluster: Cluster, run: Run, lines: number): Promise<void> {
  const applied = await cluster.waitForRun(run.id, ['applied'], 120_000);
  assert.equal(applied.attributes['error-code'], null);
  const log = await readLog(cluster.server, relatedId(applied, 'apply'));
  // Compared as one string: a missing, doubled or reordered byte anywhere in it fails.
  const stored = numberedSection(log);
  const expected = expectedSection(lines);
  if (stored !== expected) {
    const storedLines = stored.split('\n');
    const at = expected.split('\n').findIndex((line, index) => storedLines[index] !== line);
    assert.fail(`the numbered section differs from what the engine printed from line ${at + 1} on:\n${storedLines.slice(Math.max(0, at - 2), at + 3).join('\n')}\n--- whole log:\n${log}`);
  }
  assert.equal(count(log, /^Apply complete! /m), 1, log);
  assert.equal(count(log, /^Outpost: running tofu apply$/m), 1, log);
  assert.equal(count(log, /^Outpost agent [^:]+: apply job /m), 1, log);
  const current = await currentStateVersion(cluster.server, cluster.workspace.id);
  assert.ok(current, 'the engine saved state');
  const state = await downloadState(cluster.server, current.id);
  assert.deepEqual(state.resources.map((resource) => resource.name), ['numbered']);
}

for (const backend of databaseBackends()) {
  // Proves: a run started before the restart completes; the stored apply log
  // has every line printed before, during and after the outage exactly once,
  // in order; the job kept its lease (no "job lost its agent").
  test(`SIGKILL the server mid-apply and start it again: the run completes; the stored log is byte-identical to what the engine printed (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { serverEnv });
    const agent = cluster.agents[0]!;
    killLeftoversAfter(t, () => jobDirectoryPattern(agent));
    const dir = await tempDir(t);
    const lines = 120;
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, numberedApplyConfig(lines, '0.1', path.join(dir, 'done')));
    const run = await createRun(cluster.server, cluster.workspace.id, cv);
    await cluster.waitForRun(run.id, ['applying']);
    await waitForLog(cluster.server, relatedId(run, 'apply'), /line 0020 /, () => cluster.diagnostics(run.id));

    await cluster.server.kill();
    // Down for a while: the engine goes on printing, the agent cannot ship.
    await sleep(3_000);
    assert.ok(!existsSync(path.join(dir, 'done')), 'the provisioner was still printing when the server came back (make it print longer)');
    await cluster.server.restart();

    await assertAppliedWithFullLog(cluster, run, lines);
    assert.equal(count(cluster.server.output(), /job lost its agent/), 0, 'the job kept its lease through the restart');
    assert.equal((await getRun(cluster.server, run.id)).attributes.status, 'applied');
  });

  // Proves: results produced while the server is down are delivered once it
  // is back: the engine's final state save and unlock, the operation's
  // result and the agent's finish are retried across an outage longer than
  // OpenTofu's default http-backend retries (about 3 s), and the end of the
  // log arrives with no gap.
  test(`the server is down when the apply finishes: the state, result and log are delivered once it is back (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { serverEnv });
    const agent = cluster.agents[0]!;
    killLeftoversAfter(t, () => jobDirectoryPattern(agent));
    const dir = await tempDir(t);
    const done = path.join(dir, 'done');
    const lines = 40;
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, numberedApplyConfig(lines, '0.05', done));
    const run = await createRun(cluster.server, cluster.workspace.id, cv);
    await cluster.waitForRun(run.id, ['applying']);
    await waitForLog(cluster.server, relatedId(run, 'apply'), /line 0005 /, () => cluster.diagnostics(run.id));

    await cluster.server.kill();
    await waitUntil('the provisioner to finish while the server is down', async () => (existsSync(done) ? true : undefined), () => cluster.diagnostics(), 30_000);
    // Long enough for every call of the job's end to fail at least once,
    // and for OpenTofu's default retries of the state save to run out.
    await sleep(8_000);
    await cluster.server.restart();

    await assertAppliedWithFullLog(cluster, run, lines);
    assert.equal(count(cluster.server.output(), /job lost its agent/), 0, 'the job kept its lease through the restart');
  });

  // Proves: the job operation's own calls (plan upload, result) wait for a
  // control plane that is down for longer than 15 s, say so once in the run
  // log, and go through when it is back; the agent then reports the finish.
  test(`the server is down when a plan uploads its plan and result: both are delivered once it is back (${backend})`, async (t) => {
    const cluster = await setupCluster(t, backend, { serverEnv });
    const agent = cluster.agents[0]!;
    killLeftoversAfter(t, () => jobDirectoryPattern(agent));
    const endpoint = await HeldEndpoint.start(t);
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, planTimeReadConfig(endpoint.url('/held')));
    const run = await createRun(cluster.server, cluster.workspace.id, cv, { planOnly: true });
    await cluster.waitForRun(run.id, ['planning']);
    await waitUntil('the plan to read the held state', async () => (endpoint.requests.length > 0 ? true : undefined), () => cluster.diagnostics(run.id));

    await cluster.server.kill();
    // The plan ends now; its upload and result meet a server that is gone.
    endpoint.release();
    await sleep(18_000);
    await cluster.server.restart();

    const finished = await cluster.waitForRun(run.id, ['planned_and_finished'], 120_000);
    assert.equal(finished.attributes['error-code'], null);
    assert.equal(finished.attributes['resource-additions'], 1);
    const log = await readLog(cluster.server, relatedId(finished, 'plan'));
    assert.equal(count(log, /cannot reach the control plane .*; retrying with backoff/), 1, log);
    assert.equal(count(log, /the control plane answers again after/), 1, log);
    assert.equal(count(log, /^Outpost: reporting the result: succeeded$/m), 1, log);
    assert.equal(count(log, /^Plan: 1 to add/m), 1, log);
    assert.equal(count(cluster.server.output(), /job lost its agent/), 0, 'the job kept its lease through the restart');
  });
}
