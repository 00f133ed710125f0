// Which pushes start a run: files under the working directory, or matching
// the trigger patterns; unknown changes always do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { triggerMatch, validateTriggerPattern } from './trigger-paths.ts';

describe('triggerMatch', () => {
  it('runs when the changes are not known', () => {
    const verdict = triggerMatch(null, { workingDirectory: 'infra', patterns: ['nothing/**'] });
    assert.equal(verdict.runs, true);
    assert.match(verdict.reason, /not known/);
  });

  it('does not run for a push that changed nothing', () => {
    assert.equal(triggerMatch([], { workingDirectory: '', patterns: [] }).runs, false);
  });

  it('without patterns, runs for a change under the working directory, anywhere for the root', () => {
    const rules = { workingDirectory: './infra/prod/', patterns: [] };
    assert.deepEqual(triggerMatch(['infra/prod/main.tf', 'README.md'], rules), { runs: true, reason: 'infra/prod/main.tf changed under the working directory infra/prod' });
    assert.equal(triggerMatch(['infra/production/main.tf', 'infra/main.tf'], rules).runs, false);
    assert.match(triggerMatch(['README.md'], rules).reason, /no changed file is under the working directory infra\/prod/);
    assert.equal(triggerMatch(['README.md'], { workingDirectory: '', patterns: [] }).runs, true);
    assert.equal(triggerMatch(['README.md'], { workingDirectory: '.', patterns: [] }).runs, true);
  });

  it('with patterns, runs only for a matching file, wherever the working directory is', () => {
    const rules = { workingDirectory: 'infra', patterns: ['infra/**/*.tf', 'modules/', 'shared'] };
    assert.equal(triggerMatch(['infra/prod/main.tf'], rules).runs, true);
    assert.equal(triggerMatch(['infra/README.md'], rules).runs, false);
    assert.equal(triggerMatch(['modules/network/vpc.tf'], rules).runs, true);
    assert.equal(triggerMatch(['shared/x/y.hcl'], rules).runs, true);
    assert.equal(triggerMatch(['shared.txt', 'sharedx/a'], rules).runs, false);
    assert.match(triggerMatch(['docs/a.md'], rules).reason, /no changed file matched the trigger patterns \(infra\/\*\*\/\*\.tf, modules\/, shared\)/);
  });

  it('matches names that start with a dot with wildcards', () => {
    assert.equal(triggerMatch(['infra/.terraform.lock.hcl'], { workingDirectory: '', patterns: ['infra/*'] }).runs, true);
    assert.equal(triggerMatch(['.github/workflows/plan.yml'], { workingDirectory: '', patterns: ['**/*.yml'] }).runs, true);
    assert.equal(triggerMatch(['.github/workflows/plan.yml'], { workingDirectory: '', patterns: ['.github/**'] }).runs, true);
    assert.equal(triggerMatch(['x/a.tf'], { workingDirectory: '', patterns: ['x/.a.tf'] }).runs, false);
  });

  it('names at most three matching files in its reason', () => {
    const verdict = triggerMatch(['a.tf', 'b.tf', 'c.tf', 'd.tf', 'e.tf'], { workingDirectory: '', patterns: ['*.tf'] });
    assert.equal(verdict.reason, 'a.tf, b.tf, c.tf and 2 more matched the trigger patterns');
  });
});

describe('validateTriggerPattern', () => {
  it('accepts relative patterns and refuses empty, absolute, escaping or overlong ones', () => {
    for (const pattern of ['modules/**', '*.tf', 'infra/', '.github/**', '{a,b}/*.hcl']) assert.equal(validateTriggerPattern(pattern), undefined, pattern);
    assert.match(validateTriggerPattern('')!, /empty/);
    assert.match(validateTriggerPattern('  ')!, /empty/);
    assert.match(validateTriggerPattern('/etc/**')!, /absolute/);
    assert.match(validateTriggerPattern('C:/x')!, /absolute/);
    assert.match(validateTriggerPattern('a/../../b')!, /\.\./);
    assert.match(validateTriggerPattern('a\\b')!, /"\/"/);
    assert.match(validateTriggerPattern('x'.repeat(257))!, /256/);
  });
});
