import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { pino } from 'pino';
import type { JobAssignment } from '../protocol/agent-api.ts';
import type { AgentConfig } from './config.ts';
import { ProtocolError, type ControlPlaneClient } from './control-plane-client.ts';
import type { Driver, ExitResult, RunningTask, TaskHandle, TaskSpec } from './drivers/driver.ts';
import type { EngineCache } from './engines/engine-cache.ts';
import type { StopCause } from './job-end.ts';
import { JobRunner } from './job-runner.ts';
import type { RecoverableTask, TaskHandleStore } from './task-handles.ts';

const appRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

/** A sandbox that ignores SIGINT (as an engine busy saving state would) and dies on a kill. */
class FakeDriver implements Driver {
  readonly name = 'fake';
  readonly calls: { what: string; at: number }[] = [];
  readonly specs: TaskSpec[] = [];
  readonly #exit = Promise.withResolvers<ExitResult>();
  readonly #isolates: boolean;
  startGate: Promise<void> = Promise.resolve();

  constructor(isolates = false) {
    this.#isolates = isolates;
  }
  capabilities() {
    return { recover: false, isolatesFiles: this.#isolates, sharesAgentLoopback: true };
  }
  async fingerprint() {
    return { healthy: true, detail: 'fake' };
  }
  async start(spec: TaskSpec): Promise<RunningTask> {
    this.specs.push(spec);
    await this.startGate;
    this.calls.push({ what: 'start', at: Date.now() });
    const output = new PassThrough();
    void this.#exit.promise.then(() => output.end());
    return { handle: { version: 1, driver: 'fake', jobId: spec.jobId, agentId: spec.agentId, workdir: spec.workdir, ref: 'x', startedAt: Date.now() }, output };
  }
  wait(): Promise<ExitResult> {
    return this.#exit.promise;
  }
  async signal(_handle: TaskHandle, signal: NodeJS.Signals): Promise<void> {
    this.calls.push({ what: signal, at: Date.now() });
    if (signal === 'SIGKILL') this.#exit.resolve({ code: null, signal: 'SIGKILL', oomKilled: false });
  }
  async stop(handle: TaskHandle, timeoutMs: number): Promise<void> {
    this.calls.push({ what: `stop(${timeoutMs})`, at: Date.now() });
    await this.signal(handle, 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, timeoutMs));
    await this.signal(handle, 'SIGKILL');
  }
  async destroy(): Promise<void> {}
  async inspect() {
    return { running: false };
  }
  async recover() {
    return undefined;
  }
  async removeOrphans() {
    return 0;
  }
  exitNow(): void {
    this.#exit.resolve({ code: 0, signal: null, oomKilled: false });
  }
}

const assignment: JobAssignment = { job_id: 'job-1', lease_id: 'lease-1', run_id: 'run-1', kind: 'apply', job_token: 'token', engine: { name: 'opentofu', version: '1.10.0' }, log_offset: 0 };

function runner(driver: Driver, dataDir: string, finished: string[]): JobRunner {
  const client = {
    startJob: async () => undefined,
    appendLog: async (_s: string, _j: string, _l: string, offset: number, data: Buffer) => offset + data.length,
    finishJob: async (_s: string, _j: string, body: { status: string }) => void finished.push(body.status),
  } as unknown as ControlPlaneClient;
  const engines = { acquire: async () => ({ path: '/bin/true', engine: 'opentofu', version: '1.10.0', source: 'local', release: () => undefined }) } as unknown as EngineCache;
  const handles = { save: async () => undefined, remove: async () => undefined } as unknown as TaskHandleStore;
  const config = { name: 'a', url: 'http://127.0.0.1:1', dataDir, killGrace: 400, maxArchiveMb: 1 } as AgentConfig;
  return JobRunner.claimed(assignment, { config, client, driver, engines, logger: pino({ level: 'silent' }), baseEnv: {}, agentId: 'agent-1', session: () => 's', handles });
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('an abandoned (stale) job is interrupted, then killed only after the kill grace', async () => {
  const driver = new FakeDriver();
  const finished: string[] = [];
  const job = runner(driver, os.tmpdir(), finished);
  const ran = job.run();
  await until(() => driver.calls.some((call) => call.what === 'start'));
  const abandonedAt = Date.now();
  await job.abandon();
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(driver.calls.map((call) => call.what), ['start', 'SIGINT'], 'interrupted once, not killed within the grace');
  assert.equal(await ran, 'abandoned');
  const killed = driver.calls.find((call) => call.what === 'SIGKILL');
  assert.ok(killed && killed.at - abandonedAt >= 380, `killed ${killed ? killed.at - abandonedAt : '-'} ms after the abandon; the grace is 400 ms`);
  assert.deepEqual(finished, [], 'an abandoned job reports nothing');
});

test('a job abandoned while its sandbox is being created is interrupted as soon as it exists', async () => {
  const driver = new FakeDriver();
  const gate = Promise.withResolvers<void>();
  driver.startGate = gate.promise;
  const job = runner(driver, os.tmpdir(), []);
  const ran = job.run();
  await until(() => driver.specs.length > 0);
  await job.abandon();
  gate.resolve();
  await until(() => driver.calls.some((call) => call.what === 'SIGINT'));
  assert.equal(await ran, 'abandoned');
});

test('a sandbox that isolates files gets the curated runtime, never the app directory', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-runner-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const driver = new FakeDriver(true);
  const job = runner(driver, dataDir, []);
  const ran = job.run();
  await until(() => driver.calls.some((call) => call.what === 'start'));
  driver.exitNow();
  assert.equal(await ran, 'succeeded');
  const [spec] = driver.specs;
  assert.ok(!spec!.shared.includes(appRoot), `the app root is shared: ${spec!.shared.join(', ')}`);
  const runtime = spec!.shared.find((file) => file.startsWith(path.join(dataDir, 'runtime')));
  assert.ok(runtime, `no runtime under the data dir is shared: ${spec!.shared.join(', ')}`);
  assert.equal(spec!.command[1], path.join(runtime, 'src/job/entry.ts'));
  // (The Node binary itself may live in the app's node_modules: a single file.)
  for (const file of [...spec!.shared, ...spec!.command].filter((file) => file !== process.execPath)) {
    assert.ok(!file.startsWith(`${appRoot}/`) || file.startsWith(`${dataDir}/`), `${file} is inside the app directory`);
  }
});

/** A sandbox a previous agent process left, as a driver that recovers gives it back: its whole output again, then its exit. */
function recoveredSandbox(output: string, exit: ExitResult) {
  const calls: string[] = [];
  const stream = new PassThrough();
  const exited = Promise.withResolvers<ExitResult>();
  const driver = {
    name: 'fake',
    capabilities: () => ({ recover: true, isolatesFiles: true, sharesAgentLoopback: true }),
    wait: () => exited.promise,
    signal: async (_handle: TaskHandle, signal: NodeJS.Signals) => void calls.push(signal),
    stop: async () => void calls.push('stop'),
    destroy: async () => void calls.push('destroy'),
  } as unknown as Driver;
  const finish = () => {
    stream.end(output);
    exited.resolve(exit);
  };
  return { driver, calls, running: { output: stream }, finish };
}

function recoveringRunner(driver: Driver, running: { output: PassThrough }, options: { held: number | Error; stop?: StopCause }) {
  const shipped: { offset: number; data: string }[] = [];
  const finished: { status: string; error?: { code: string } }[] = [];
  const saved: string[] = [];
  const client = {
    logSize: async () => {
      if (options.held instanceof Error) throw options.held;
      return options.held;
    },
    appendLog: async (_s: string, _j: string, _l: string, offset: number, data: Buffer) => {
      shipped.push({ offset, data: data.toString() });
      return offset + data.length;
    },
    finishJob: async (_s: string, _j: string, body: { status: string; error?: { code: string } }) => void finished.push(body),
  } as unknown as ControlPlaneClient;
  const handles = { save: async () => undefined, remove: async (jobId: string) => void saved.push(`removed ${jobId}`) } as unknown as TaskHandleStore;
  const config = { name: 'a', url: 'http://127.0.0.1:1', dataDir: os.tmpdir(), killGrace: 400, maxArchiveMb: 1 } as AgentConfig;
  const task: RecoverableTask = {
    version: 1, driver: 'fake', jobId: 'job-1', agentId: 'agent-1', workdir: path.join(os.tmpdir(), 'no-such-job-dir'), ref: 'x', startedAt: 0,
    leaseId: 'lease-1', runId: 'run-1', jobKind: 'plan',
    log: { base: 100, lines: [{ after: 0, text: 'Outpost agent a: plan job job-1, driver fake\n' }] },
    ...(options.stop ? { stop: options.stop } : {}),
  };
  const engines = {} as EngineCache;
  const job = JobRunner.recovered(task, { handle: task, output: running.output }, { config, client, driver, engines, logger: pino({ level: 'silent' }), baseEnv: {}, agentId: 'agent-1', session: () => 's', handles });
  return { job, shipped, finished, saved };
}

const header = 'Outpost agent a: plan job job-1, driver fake\n';

test('a job taken back after a restart continues its log where the control plane\'s copy ends, then reports its exit', async () => {
  const sandbox = recoveredSandbox('one\ntwo\n', { code: 0, signal: null, oomKilled: false });
  const held = 100 + Buffer.byteLength(`${header}one\n`);
  const { job, shipped, finished, saved } = recoveringRunner(sandbox.driver, sandbox.running, { held });
  const ran = job.run();
  sandbox.finish();
  assert.equal(await ran, 'succeeded');
  assert.equal(shipped[0]?.offset, held, 'shipping resumes at the size the control plane holds');
  assert.equal(shipped.map((chunk) => chunk.data).join(''), 'Outpost agent a: the agent restarted and took this plan job back; its sandbox ran on meanwhile.\ntwo\n');
  assert.deepEqual(finished.map((body) => body.status), ['succeeded']);
  assert.deepEqual(sandbox.calls, ['destroy']);
  assert.deepEqual(saved, ['removed job-1']);
});

test('a job the control plane no longer holds after a restart: its sandbox is removed and nothing is reported', async () => {
  const sandbox = recoveredSandbox('one\n', { code: 0, signal: null, oomKilled: false });
  const { job, shipped, finished } = recoveringRunner(sandbox.driver, sandbox.running, { held: new ProtocolError(409, 'lease_stale', 'lease lease-1 is no longer current') });
  assert.equal(await job.run(), 'abandoned');
  assert.deepEqual(sandbox.calls, ['destroy']);
  assert.deepEqual(shipped, []);
  assert.deepEqual(finished, []);
});

test('a job taken back keeps the stop its previous agent process began, and is not interrupted twice', async () => {
  const sandbox = recoveredSandbox('interrupted\n', { code: 2, signal: null, oomKilled: false });
  const stop: StopCause = { kind: 'agent-stop', action: 'grace', reason: 'received SIGTERM' };
  const { job, finished } = recoveringRunner(sandbox.driver, sandbox.running, { held: 100 + Buffer.byteLength(header), stop });
  const ran = job.run();
  await job.signal('cancel');
  sandbox.finish();
  assert.equal(await ran, 'canceled', 'someone\'s cancel is reported over the agent\'s stop');
  assert.deepEqual(finished.map((body) => body.status), ['canceled']);
  assert.ok(!sandbox.calls.includes('SIGINT'), `the sandbox had its one interrupt already: ${sandbox.calls.join(', ')}`);
});
