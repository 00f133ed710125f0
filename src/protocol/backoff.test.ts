import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoff } from './backoff.ts';

const policy = { baseMs: 250, maxMs: 15_000 };

test('the delay doubles with each attempt until the cap', () => {
  const whole = () => 0.999_999;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => Math.round(backoff(attempt, policy, whole))),
    [250, 500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000],
  );
});

test('jitter keeps each delay between half and all of its ceiling', () => {
  assert.equal(backoff(2, policy, () => 0), 500);
  for (let i = 0; i < 1_000; i++) {
    const delay = backoff(3, policy);
    assert.ok(delay >= 1_000 && delay < 2_000, String(delay));
  }
});

test('any number of attempts stays finite and capped', () => {
  assert.equal(backoff(10_000, policy, () => 0), 7_500);
  assert.equal(backoff(-1, policy, () => 0), 125, 'a negative attempt counts as the first');
});

test('without jitter the delay is its ceiling', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((attempt) => backoff(attempt, { baseMs: 500, maxMs: 5_000, jitter: false })), [500, 1_000, 2_000, 4_000, 5_000, 5_000]);
});
