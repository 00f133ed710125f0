import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalNotifier } from './notifier.ts';

describe('LocalNotifier', () => {
  it('wakes every waiter of a topic without a limit, and only that topic', async () => {
    const notifier = new LocalNotifier();
    const waits = [notifier.wait(['pool:a'], 5_000), notifier.wait(['pool:a', 'agent:x'], 5_000)];
    const other = notifier.wait(['pool:b'], 50);
    notifier.notify('pool:a');
    assert.deepEqual(await Promise.all(waits), ['notified', 'notified']);
    assert.equal(await other, 'timeout');
  });

  it('with a limit wakes the longest waiting first; the others keep waiting for the next notification', async () => {
    const notifier = new LocalNotifier();
    const woken: number[] = [];
    const waits = [0, 1, 2, 3].map((index) => notifier.wait(['pool:a'], 5_000).then((outcome) => (woken.push(index), outcome)));
    notifier.notify('pool:a', 2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(woken, [0, 1]);
    notifier.notify('pool:a', 2);
    assert.deepEqual(await Promise.all(waits), ['notified', 'notified', 'notified', 'notified']);
    assert.deepEqual(woken, [0, 1, 2, 3]);
  });

  it('a waiter woken through one topic is gone from the others; an abort ends a wait', async () => {
    const notifier = new LocalNotifier();
    const both = notifier.wait(['pool:a', 'agent:x'], 5_000);
    notifier.notify('agent:x');
    assert.equal(await both, 'notified');
    const later = notifier.wait(['pool:a'], 5_000);
    notifier.notify('pool:a', 1);
    assert.equal(await later, 'notified', 'the first waiter no longer takes a slot of the limit');
    const controller = new AbortController();
    const aborted = notifier.wait(['pool:a'], 5_000, controller.signal);
    controller.abort();
    assert.equal(await aborted, 'aborted');
  });
});
