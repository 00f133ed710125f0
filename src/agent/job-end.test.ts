import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ExitResult } from './drivers/driver.ts';
import { decideEnd, replaces, type StopCause } from './job-end.ts';

const job = { agentName: 'vm-1', kind: 'apply' as const };
const exited = (code: number | null, signal: NodeJS.Signals | null = null, oomKilled = false): ExitResult => ({ code, signal, oomKilled });
const memoryError = { code: 'memory_limit', message: 'the job reached its memory soft limit' } as const;

const causes = {
  cancel: { kind: 'canceled', by: 'cancel' },
  forceCancel: { kind: 'canceled', by: 'force_cancel' },
  grace: { kind: 'agent-stop', action: 'grace', reason: 'received SIGTERM' },
  force: { kind: 'agent-stop', action: 'force', reason: 'received SIGTERM again' },
  memory: { kind: 'memory-limit', error: memoryError },
  abandoned: { kind: 'abandoned' },
} satisfies Record<string, StopCause>;

function endOf(exit: ExitResult, stop: StopCause | undefined) {
  return decideEnd({ kind: 'exited', exit, stop }, job);
}

describe('a sandbox that exited', () => {
  test('with nothing stopping it: its exit code says how it went', () => {
    assert.deepEqual(endOf(exited(0), undefined), { lines: [], finish: { status: 'succeeded' }, end: 'succeeded' });
    assert.deepEqual(endOf(exited(2), undefined), { lines: [], finish: { status: 'canceled' }, end: 'canceled' });
    assert.deepEqual(endOf(exited(1), undefined), { lines: [], finish: { status: 'failed', error: { code: 'engine_failed', message: 'the job operation exited with code 1' } }, end: 'failed' });
    const oom = endOf(exited(null, 'SIGKILL', true), undefined);
    assert.deepEqual(oom.lines, ['Error: the job ran out of memory and was killed']);
    assert.equal(oom.finish?.error?.code, 'out_of_memory');
  });

  test('canceled: an interrupted or killed sandbox is canceled, one that finished anyway is reported as it finished', () => {
    assert.equal(endOf(exited(0), causes.cancel).end, 'succeeded');
    assert.equal(endOf(exited(2), causes.cancel).end, 'canceled');
    assert.equal(endOf(exited(null, 'SIGINT'), causes.cancel).end, 'canceled');
    assert.equal(endOf(exited(1), causes.cancel).end, 'failed', 'after a plain cancel, an operation that fails has failed');
    assert.equal(endOf(exited(1), causes.forceCancel).end, 'canceled', 'a force-cancel kills: whatever the exit, it was canceled');
  });

  test('the agent\'s stop: reported agent_stopped with a line saying so, unless the job succeeded anyway', () => {
    const stopped = endOf(exited(2), causes.grace);
    assert.deepEqual(stopped, {
      lines: ['Outpost: the apply was ended by its agent stopping (grace, received SIGTERM).'],
      finish: { status: 'failed', error: { code: 'agent_stopped', message: 'agent vm-1 was stopped (grace, received SIGTERM)' } },
      end: 'stopped',
    });
    assert.equal(endOf(exited(null, 'SIGKILL'), causes.force).end, 'stopped');
    assert.deepEqual(endOf(exited(0), causes.grace), { lines: [], finish: { status: 'succeeded' }, end: 'succeeded' });
  });

  test('the memory guard: failed memory_limit, or out_of_memory when the kernel killed it anyway', () => {
    assert.deepEqual(endOf(exited(2), causes.memory), { lines: [`Error: ${memoryError.message} [memory_limit]`], finish: { status: 'failed', error: memoryError }, end: 'failed' });
    const killed = endOf(exited(null, 'SIGKILL', true), causes.memory);
    assert.equal(killed.finish?.error?.code, 'out_of_memory');
    assert.deepEqual(killed.lines, [`Error: ${killed.finish?.error?.message} [out_of_memory]`]);
    assert.equal(endOf(exited(0), causes.memory).end, 'succeeded');
  });

  test('abandoned: nothing is reported, the control plane has moved on', () => {
    assert.deepEqual(endOf(exited(null, 'SIGKILL'), causes.abandoned), { lines: [], finish: undefined, end: 'abandoned' });
    assert.equal(endOf(exited(0), causes.abandoned).finish, undefined, 'not even a success: the lease is gone');
  });
});

test('a job stopped before its sandbox ran says that nothing was run', () => {
  assert.deepEqual(decideEnd({ kind: 'not-run', stop: causes.cancel }, job), { lines: ['The job was canceled before it started: nothing was run.'], finish: { status: 'canceled' }, end: 'canceled' });
  const stopped = decideEnd({ kind: 'not-run', stop: causes.grace }, job);
  assert.deepEqual(stopped.lines, ['The agent stopped (received SIGTERM) before the job operation started: nothing was run.']);
  assert.equal(stopped.finish?.error?.code, 'agent_stopped');
  assert.equal(stopped.end, 'stopped');
  assert.deepEqual(decideEnd({ kind: 'not-run', stop: causes.abandoned }, job), { lines: [], finish: undefined, end: 'abandoned' });
});

test('a job whose engine or sandbox could not be prepared fails not_started', () => {
  const error = { code: 'sandbox_failed', message: 'no image' } as const;
  assert.deepEqual(decideEnd({ kind: 'not-started', error, line: 'Error: no image' }, job), { lines: ['Error: no image'], finish: { status: 'failed', error }, end: 'not_started' });
});

test('a stronger cause replaces a weaker one, and a cause escalates within its kind', () => {
  assert.equal(replaces(causes.memory, undefined), true);
  assert.equal(replaces(causes.grace, causes.memory), true);
  assert.equal(replaces(causes.cancel, causes.force), true, 'someone\'s cancel is reported over the agent\'s stop');
  assert.equal(replaces(causes.force, causes.cancel), false);
  assert.equal(replaces(causes.abandoned, causes.forceCancel), true);
  assert.equal(replaces(causes.cancel, causes.abandoned), false);
  assert.equal(replaces(causes.force, causes.grace), true);
  assert.equal(replaces(causes.grace, causes.force), false);
  assert.equal(replaces(causes.forceCancel, causes.cancel), true);
  assert.equal(replaces(causes.cancel, causes.forceCancel), false);
});
