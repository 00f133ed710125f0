import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planOptionArgs } from './job-steps.ts';

test('a run\'s plan options become the engine\'s flags, one argument each', () => {
  assert.deepEqual(planOptionArgs(undefined), []);
  assert.deepEqual(planOptionArgs({ refresh: true, refresh_only: false, targets: [], replace: [] }), []);
  assert.deepEqual(planOptionArgs({ refresh: false, refresh_only: true, targets: ['module.app', 'aws_instance.web["a b"]'], replace: ['terraform_data.x'] }), [
    '-refresh=false',
    '-refresh-only',
    '-target=module.app',
    '-target=aws_instance.web["a b"]',
    '-replace=terraform_data.x',
  ]);
});
