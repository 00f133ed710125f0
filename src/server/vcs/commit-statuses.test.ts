import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commitStatusOf } from './commit-statuses.ts';

const base = { plan_only: 0, has_changes: 1, resource_additions: 1, resource_changes: 2, resource_destructions: 0, error_message: null };

test('each run status says one thing on the commit: pending while it plans or applies, then the outcome with the change summary', () => {
  assert.deepEqual(commitStatusOf({ ...base, status: 'plan_queued' }), { state: 'pending', description: 'Run queued: waiting to plan' });
  assert.deepEqual(commitStatusOf({ ...base, status: 'planning' }), { state: 'pending', description: 'Planning' });
  assert.deepEqual(commitStatusOf({ ...base, status: 'planned' }), { state: 'pending', description: 'Planned (1 to add, 2 to change, 0 to destroy): waiting for confirmation' });
  assert.deepEqual(commitStatusOf({ ...base, status: 'planned_and_finished' }), { state: 'success', description: 'Plan: 1 to add, 2 to change, 0 to destroy' });
  assert.deepEqual(commitStatusOf({ ...base, has_changes: 0, status: 'planned_and_finished' }), { state: 'success', description: 'Plan: no changes' });
  assert.deepEqual(commitStatusOf({ ...base, status: 'applied' }), { state: 'success', description: 'Applied: 1 added, 2 changed, 0 destroyed' });
  assert.deepEqual(commitStatusOf({ ...base, status: 'errored', error_message: 'the engine exited with an error' }), { state: 'failure', description: 'Run errored: the engine exited with an error' });
  assert.equal(commitStatusOf({ ...base, status: 'discarded' }).state, 'error');
  assert.equal(commitStatusOf({ ...base, status: 'force_canceled' }).state, 'error');
});
