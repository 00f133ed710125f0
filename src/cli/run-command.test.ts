// `outpost run DIR` end to end against a scripted API: the upload, the log
// streaming, confirmation, Ctrl-C, and the exit code of each outcome.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunStatus } from '../protocol/statuses.ts';
import type { LogReadOptions, RunAction } from './api-client.ts';
import type { PhaseKind } from './api-resources.ts';
import { fakeProcess, fakeRun, recordingTerminal, scriptedApi, type FakeProcess } from './cli-fakes.test-support.ts';
import { runCli } from './program.ts';

let configDir: string;

before(async () => {
  configDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-run-command-'));
  await writeFile(path.join(configDir, 'main.tf'), 'output "endpoint" { value = "https://example.test" }\n');
});

after(async () => {
  await rm(configDir, { recursive: true, force: true });
});

interface Script {
  /** Run status once the plan log has been read. */
  readonly afterPlan: RunStatus;
  readonly afterApply?: RunStatus;
  /** Called while the plan log streams (e.g. to press Ctrl-C). */
  readonly duringPlan?: () => void;
}

/** A server that moves one run through its lifecycle as the CLI reads its logs. */
function scriptedServer(script: Script) {
  let status: RunStatus = 'plan_queued';
  const over = { plan: false, apply: false };
  const uploads: number[] = [];
  const { api, calls } = scriptedApi({
    getWorkspaceByName: () => ({ id: 'ws-1', type: 'workspaces', attributes: { name: 'net' } }),
    createConfigurationVersion: () => ({ id: 'cv-1', type: 'configuration-versions', attributes: { status: 'pending', 'upload-url': 'http://server/upload/cv-1' } }),
    uploadConfiguration: (_url: string, archive: Uint8Array) => void uploads.push(archive.byteLength),
    getConfigurationVersion: () => ({ id: 'cv-1', type: 'configuration-versions', attributes: { status: 'uploaded' } }),
    createRun: () => fakeRun('pending'),
    getRun: () => fakeRun(status, { 'error-message': status === 'errored' ? 'engine exited with 1' : null }),
    readLog: (kind: PhaseKind, _id: string, _options: LogReadOptions, onChunk: (chunk: Buffer) => void) => {
      if (kind === 'plan') {
        onChunk(Buffer.from('\u0002Plan: 1 to add, 0 to change, 0 to destroy.\n'));
        script.duringPlan?.();
        if (status === 'plan_queued') status = script.afterPlan;
        over.plan = true;
      } else {
        onChunk(Buffer.from('Apply complete! Resources: 1 added.\u0003'));
        status = script.afterApply ?? 'applied';
        over.apply = true;
      }
    },
    getPhase: (kind: PhaseKind) => ({ id: `${kind}-1`, type: 'plans', attributes: { status: over[kind] ? 'finished' : 'pending' } }),
    runAction: (_id: string, action: RunAction) => {
      status = ({ apply: 'applying', discard: 'discarded', cancel: 'canceled', 'force-cancel': 'force_canceled' } as const)[action];
    },
    getCurrentStateVersion: () => ({ id: 'sv-1', type: 'state-versions', attributes: {} }),
    getStateOutputs: () => [
      { id: 'wsout-1', type: 'state-version-outputs', attributes: { name: 'endpoint', value: 'https://example.test', sensitive: false, type: 'string' } },
      { id: 'wsout-2', type: 'state-version-outputs', attributes: { name: 'password', value: null, sensitive: true, type: 'string' } },
    ],
  });
  return { api, calls, uploads };
}

function actions(calls: readonly (readonly unknown[])[]): unknown[] {
  return calls.filter(([method]) => method === 'runAction').map(([, , action]) => action);
}

describe('outpost run DIR', () => {
  it('uploads, streams plan and apply logs, prints the outputs, exits 0 when applied', async () => {
    const server = scriptedServer({ afterPlan: 'applying' });
    const fake = fakeProcess(server.api);
    const code = await runCli(['run', configDir, '--workspace', 'net', '--auto-approve'], fake.deps);
    assert.equal(code, 0);
    assert.equal(server.uploads.length, 1);
    assert.ok((server.uploads[0] ?? 0) > 0);
    const createRun = server.calls.find(([method]) => method === 'createRun');
    assert.deepEqual(createRun?.[1], {
      workspaceId: 'ws-1',
      configurationVersionId: 'cv-1',
      message: 'Queued by the outpost CLI',
      isDestroy: undefined,
      planOnly: undefined,
      autoApply: true,
    });
    const stdout = fake.terminal.stdoutText();
    // Logs in order, without the STX/ETX markers, then the outcome and outputs.
    assert.match(stdout, /^Plan: 1 to add, 0 to change, 0 to destroy\.\nApply complete! Resources: 1 added\.\n\nRun run-1 applied: 1 added, 0 changed, 0 destroyed\.\n\nOutputs:\n\nendpoint = "https:\/\/example\.test"\npassword = <sensitive>\n$/);
    assert.match(fake.terminal.stderrText(), /run run-1 is queued/);
  });

  it('stops at planned outside a terminal: prints how to apply or discard, exits 0', async () => {
    const server = scriptedServer({ afterPlan: 'planned' });
    const fake = fakeProcess(server.api);
    assert.equal(await runCli(['run', configDir, '--workspace', 'net'], fake.deps), 0);
    const stdout = fake.terminal.stdoutText();
    assert.match(stdout, /outpost run apply run-1\n/);
    assert.match(stdout, /outpost run discard run-1\n/);
    assert.deepEqual(actions(server.calls), []);
  });

  for (const [answer, expectedAction, expectedCode] of [['yes', 'apply', 0], ['y', 'discard', 1]] as const) {
    it(`asks on a terminal; "${answer}" means ${expectedAction}`, async () => {
      const server = scriptedServer({ afterPlan: 'planned' });
      const terminal = recordingTerminal({ stdinIsTty: true, stdoutIsTty: true });
      terminal.stdin.write(`${answer}\n`);
      const fake = fakeProcess(server.api, terminal);
      assert.equal(await runCli(['run', configDir, '--workspace', 'net'], fake.deps), expectedCode);
      assert.deepEqual(actions(server.calls), [expectedAction]);
      assert.match(terminal.stdoutText(), /Apply these changes\? Only 'yes' will be accepted: /);
    });
  }

  it('exits 1 with the error message when the run errors', async () => {
    const server = scriptedServer({ afterPlan: 'errored' });
    const fake = fakeProcess(server.api);
    assert.equal(await runCli(['run', configDir, '--workspace', 'net'], fake.deps), 1);
    assert.match(fake.terminal.stdoutText(), /Run run-1 errored: engine exited with 1\n/);
  });

  it('exits 0 for a plan-only run that finished', async () => {
    const server = scriptedServer({ afterPlan: 'planned_and_finished' });
    const fake = fakeProcess(server.api);
    assert.equal(await runCli(['run', configDir, '--workspace', 'net', '--plan-only'], fake.deps), 0);
  });

  it('first Ctrl-C cancels the run and keeps streaming; the run ends canceled (exit 1)', async () => {
    const current: { fake?: FakeProcess } = {};
    const server = scriptedServer({ afterPlan: 'planned', duringPlan: () => current.fake?.interruptListeners.forEach((listener) => listener()) });
    const fake = fakeProcess(server.api);
    current.fake = fake;
    assert.equal(await runCli(['run', configDir, '--workspace', 'net'], fake.deps), 1);
    assert.deepEqual(actions(server.calls), ['cancel']);
    assert.deepEqual(fake.exitCodes, []);
    assert.match(fake.terminal.stderrText(), /Canceling run run-1.*Ctrl-C again/);
    assert.match(fake.terminal.stdoutText(), /Run run-1 was canceled\./);
    assert.equal(fake.interruptListeners.size, 0, 'the Ctrl-C handler is removed when the command ends');
  });

  it('second Ctrl-C exits 130 at once', async () => {
    const current: { fake?: FakeProcess } = {};
    const pressTwice = (): void => {
      for (let press = 0; press < 2; press += 1) current.fake?.interruptListeners.forEach((listener) => listener());
    };
    const server = scriptedServer({ afterPlan: 'planned', duringPlan: pressTwice });
    const fake = fakeProcess(server.api);
    current.fake = fake;
    await runCli(['run', configDir, '--workspace', 'net'], fake.deps);
    assert.deepEqual(fake.exitCodes, [130]);
  });

  it('prints the run as JSON with --json, logs going to stderr', async () => {
    const server = scriptedServer({ afterPlan: 'planned_and_finished' });
    const fake = fakeProcess(server.api);
    assert.equal(await runCli(['run', configDir, '--workspace', 'net', '--json'], fake.deps), 0);
    assert.equal(JSON.parse(fake.terminal.stdoutText()).attributes.status, 'planned_and_finished');
    assert.match(fake.terminal.stderrText(), /Plan: 1 to add/);
  });
});
