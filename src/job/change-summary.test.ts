import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutpostError } from '../protocol/errors.ts';
import { ApplyCompleteWatcher, describeChanges, parseApplyCompleteLine, summarizePlan } from './change-summary.ts';

const change = (...actions: string[]) => ({ address: 'x', change: { actions } });

describe('summarizePlan', () => {
  it('counts creates, updates and deletes', () => {
    const plan = { resource_changes: [change('create'), change('create'), change('update'), change('delete')] };
    assert.deepEqual(summarizePlan(plan), { additions: 2, changes: 1, destructions: 1, hasChanges: true });
  });

  it('counts a replacement, in either order, as one addition and one destruction', () => {
    const plan = { resource_changes: [change('delete', 'create'), change('create', 'delete')] };
    assert.deepEqual(summarizePlan(plan), { additions: 2, changes: 0, destructions: 2, hasChanges: true });
  });

  it('does not count no-op and read', () => {
    const plan = { resource_changes: [change('no-op'), change('read'), change('no-op')] };
    assert.deepEqual(summarizePlan(plan), { additions: 0, changes: 0, destructions: 0, hasChanges: false });
  });

  it('has changes when only outputs change', () => {
    const plan = { resource_changes: [change('no-op')], output_changes: { url: { actions: ['update'] }, same: { actions: ['no-op'] } } };
    assert.deepEqual(summarizePlan(plan), { additions: 0, changes: 0, destructions: 0, hasChanges: true });
  });

  it('has no changes for an empty plan or unchanged outputs', () => {
    assert.equal(summarizePlan({ format_version: '1.2' }).hasChanges, false);
    assert.equal(summarizePlan({ output_changes: { a: { actions: ['no-op'] } } }).hasChanges, false);
  });

  it('rejects JSON of another shape', () => {
    assert.throws(() => summarizePlan({ resource_changes: 'nope' }), (error: unknown) => error instanceof OutpostError && error.code === 'engine_failed');
  });

  it('describes counts like the engine does', () => {
    assert.equal(describeChanges({ additions: 1, changes: 0, destructions: 2 }), 'Plan: 1 to add, 0 to change, 2 to destroy.');
  });
});

describe('apply counts', () => {
  it('reads the Apply complete and Destroy complete lines', () => {
    assert.deepEqual(parseApplyCompleteLine('Apply complete! Resources: 3 added, 1 changed, 2 destroyed.'), { additions: 3, changes: 1, destructions: 2 });
    assert.deepEqual(parseApplyCompleteLine('Destroy complete! Resources: 4 destroyed.'), { additions: 0, changes: 0, destructions: 4 });
    assert.equal(parseApplyCompleteLine('Plan: 1 to add, 0 to change, 0 to destroy.'), undefined);
  });

  it('finds the line in streamed output split anywhere', () => {
    const output = 'x: Creating...\n\nApply complete! Resources: 1 added, 0 changed, 0 destroyed.\n\nOutputs:\n';
    const watcher = new ApplyCompleteWatcher();
    for (let i = 0; i < output.length; i += 7) watcher.push(output.slice(i, i + 7));
    watcher.end();
    assert.deepEqual(watcher.counts, { additions: 1, changes: 0, destructions: 0 });
  });
});
