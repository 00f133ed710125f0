// One conformance suite for every driver (src/agent/drivers/driver.ts): start, output,
// exit codes, the job directory and shared files, signals, stop with a
// timeout, inspect, destroy, orphans, and what a restarted agent does with a
// sandbox its previous process left (recover it, or destroy it, from the
// persisted handle). Where drivers differ, the suite branches on what their
// capabilities declare, never on their names.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Driver, RunningTask, TaskSpec } from '../../src/agent/drivers/driver.ts';
import { driversUnderTest } from '../support/drivers-under-test.ts';

/** Resolves once the task's output has ended. */
function outputEnd(task: RunningTask): Promise<void> {
  return task.output.readableEnded ? Promise.resolve() : new Promise((resolve) => task.output.once('end', resolve));
}

function collect(task: RunningTask): () => string {
  let text = '';
  task.output.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return () => text;
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const underTest of driversUnderTest) {
  describe(`driver conformance: ${underTest.name}`, { skip: underTest.unavailable ?? false }, () => {
    let dataDir: string;
    let driver: Driver;
    let sharedScript: string;

    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), `outpost-driver-${underTest.name}-`));
      await chmod(dataDir, 0o755);
      driver = await underTest.create(dataDir);
      // A file outside the data dir, as the Node runtime and engine are.
      const sharedDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-shared-'));
      await chmod(sharedDir, 0o755);
      sharedScript = path.join(sharedDir, 'shared.sh');
      await writeFile(sharedScript, 'echo "shared script ran with $1"\n', { mode: 0o644 });
    });
    after(async () => {
      await rm(dataDir, { recursive: true, force: true });
      await rm(path.dirname(sharedScript), { recursive: true, force: true });
    });

    const spec = (script: string, extra: Partial<TaskSpec> = {}): TaskSpec => {
      const jobId = `job-${randomBytes(6).toString('hex')}`;
      return { jobId, agentId: 'agent-conformance', command: ['sh', '-c', script], env: { PATH: '/usr/local/bin:/usr/bin:/bin' }, workdir: path.join(dataDir, 'jobs', jobId), shared: [], ...extra };
    };

    test('fingerprint says the driver can run here', async () => {
      assert.equal((await driver.fingerprint()).healthy, true);
    });

    test('start and wait: stdout and stderr are captured, the exit code is returned', async () => {
      const task = await driver.start(spec('echo to-stdout; echo to-stderr >&2; exit 3'));
      const output = collect(task);
      const exit = await driver.wait(task.handle);
      await until(() => output().includes('to-stderr'), 'output');
      assert.equal(exit.code, 3);
      assert.equal(exit.oomKilled, false);
      assert.match(output(), /to-stdout/);
      await driver.destroy(task.handle);
    });

    test('the job directory is writable and shared files are readable at the paths given', async () => {
      const base = spec('', { shared: [] });
      const marker = path.join(base.workdir, 'written-by-the-job');
      const task = await driver.start({
        ...base,
        command: ['sh', '-c', `sh "$SCRIPT" ok && echo from-the-job > "$MARKER"${driver.capabilities().isolatesFiles ? ' && ! ( echo x >> "$SCRIPT" ) 2>/dev/null' : ''}`, 'job'],
        env: { ...base.env, SCRIPT: sharedScript, MARKER: marker },
        shared: [sharedScript],
      });
      const output = collect(task);
      const exit = await driver.wait(task.handle);
      await until(() => output().includes('shared script ran'), 'output');
      assert.equal(exit.code, 0, output());
      assert.equal((await readFile(marker, 'utf8')).trim(), 'from-the-job');
      assert.equal(await readFile(sharedScript, 'utf8'), 'echo "shared script ran with $1"\n', 'a shared file must stay unchanged');
      await driver.destroy(task.handle);
    });

    test('signal delivers SIGINT to the operation, which may handle it', async () => {
      const task = await driver.start(spec('trap "echo got-interrupt; exit 7" INT; echo ready; while :; do sleep 0.1; done'));
      const output = collect(task);
      await until(() => output().includes('ready'), 'the task to start');
      assert.equal((await driver.inspect(task.handle)).running, true);
      await driver.signal(task.handle, 'SIGINT');
      const exit = await driver.wait(task.handle);
      await until(() => output().includes('got-interrupt'), 'the trap output');
      assert.equal(exit.code, 7);
      await driver.destroy(task.handle);
    });

    test('stop interrupts, then kills a sandbox that ignores the interrupt after the timeout', async () => {
      const task = await driver.start(spec('trap "" INT; echo ready; sleep 30 & wait; sleep 30'));
      const output = collect(task);
      await until(() => output().includes('ready'), 'the task to start');
      await driver.stop(task.handle, 500);
      const exit = await driver.wait(task.handle);
      assert.ok(exit.code !== 0, `expected a killed sandbox, got ${JSON.stringify(exit)}`);
      assert.equal((await driver.inspect(task.handle)).running, false);
      await driver.destroy(task.handle);
    });

    test('destroy removes the sandbox and the job directory', async () => {
      const task = await driver.start(spec('echo ready; sleep 30'));
      const output = collect(task);
      await until(() => output().includes('ready'), 'the task to start');
      await driver.destroy(task.handle);
      await until(async () => !(await driver.inspect(task.handle)).running, 'the sandbox to stop');
      await assert.rejects(stat(task.handle.workdir), /ENOENT/);
    });

    test('a driver that cannot recover says so: after an agent restart, recover gives nothing and destroy removes the leftover', async (t) => {
      if (driver.capabilities().recover) {
        t.skip('the driver declares that it recovers (see the recover tests)');
        return;
      }
      const task = await driver.start(spec('echo ready; sleep 30'));
      const output = collect(task);
      await until(() => output().includes('ready'), 'the task to start');
      const persisted = JSON.parse(JSON.stringify(task.handle)) as typeof task.handle;
      const restarted = await underTest.create(dataDir);
      assert.equal(await restarted.recover(persisted), undefined);
      await restarted.destroy(persisted);
      await until(async () => !(await restarted.inspect(persisted)).running, 'the leftover sandbox to be gone');
    });

    test('recover: after an agent restart, a fresh driver re-attaches to a running sandbox, reads its whole output again and gets its exit', async (t) => {
      if (!driver.capabilities().recover) {
        t.skip('the driver declares that it cannot recover');
        return;
      }
      // Output before and after the restart, a line without its end across it, and stderr among stdout.
      const script = 'for i in 1 2 3; do echo before-$i; done; printf half-; echo err-before >&2; sleep 1.5; echo line; for i in 1 2 3; do echo after-$i; sleep 0.1; done; exit 5';
      const task = await driver.start(spec(script));
      const seen = collect(task);
      await until(() => seen().includes('err-before'), 'the first output');
      const persisted = JSON.parse(JSON.stringify(task.handle)) as typeof task.handle;
      const restarted = await underTest.create(dataDir);
      const recovered = await restarted.recover(persisted);
      assert.ok(recovered, 'a running sandbox is recovered');
      const replayed = collect(recovered);
      const ended = outputEnd(recovered);
      const exit = await restarted.wait(persisted);
      await until(() => replayed().includes('after-3'), 'the replayed output');
      await ended;
      assert.equal(exit.code, 5);
      await until(() => seen().includes('after-3'), 'the first stream to end');
      assert.equal(replayed(), seen(), 'the recovered output is the same bytes as the live one, from the first');
      assert.match(replayed(), /^before-1\nbefore-2\nbefore-3\nhalf-err-before\nline\nafter-1\nafter-2\nafter-3\n$/);
      await restarted.destroy(persisted);
      await until(async () => !(await restarted.inspect(persisted)).running, 'the sandbox to be gone');
      assert.equal(await underTest.create(dataDir).then((again) => again.recover(persisted)), undefined, 'a destroyed sandbox cannot be recovered');
    });

    test('recover: a sandbox that exited while no agent ran is recovered with its output and its exit, until it is destroyed', async (t) => {
      if (!driver.capabilities().recover) {
        t.skip('the driver declares that it cannot recover');
        return;
      }
      const task = await driver.start(spec('echo done-before-the-restart; exit 4'));
      const seen = collect(task);
      await driver.wait(task.handle);
      await until(() => seen().includes('done-before'), 'the output');
      const restarted = await underTest.create(dataDir);
      const recovered = await restarted.recover(task.handle);
      assert.ok(recovered, 'an exited sandbox not yet destroyed is recovered');
      const replayed = collect(recovered);
      const ended = outputEnd(recovered);
      assert.equal((await restarted.wait(task.handle)).code, 4);
      await ended;
      assert.equal(replayed(), 'done-before-the-restart\n');
      await restarted.destroy(task.handle);
    });

    test('recover refuses a handle whose sandbox belongs to another data dir', async (t) => {
      if (!driver.capabilities().recover) {
        t.skip('the driver declares that it cannot recover');
        return;
      }
      const task = await driver.start(spec('echo ready; sleep 30'));
      const otherDataDir = await mkdtemp(path.join(os.tmpdir(), `outpost-driver-${underTest.name}-other-`));
      t.after(() => rm(otherDataDir, { recursive: true, force: true }));
      const stranger = await underTest.create(otherDataDir);
      assert.equal(await stranger.recover(task.handle), undefined);
      await driver.destroy(task.handle);
    });

    test('removeOrphans removes sandboxes no handle accounts for, and keeps known ones', async () => {
      const known = await driver.start(spec('echo ready; sleep 30'));
      const orphan = await driver.start(spec('echo ready; sleep 30'));
      await until(async () => (await driver.inspect(orphan.handle)).running, 'the orphan to run');
      const removed = await driver.removeOrphans(new Set([known.handle.jobId]));
      assert.equal(removed, 1);
      await until(async () => !(await driver.inspect(orphan.handle)).running, 'the orphan to be removed');
      assert.equal((await driver.inspect(known.handle)).running, true);
      await driver.destroy(known.handle);
      await driver.destroy(orphan.handle);
    });
  });
}
