// Error codes on the agent protocol come from the catalogue; a code a newer
// peer added reads as `internal` instead of failing the whole message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorDocument, jobErrorInfo, jobFinishRequest } from './agent-api.ts';

test('a job error with a catalogue code passes through', () => {
  assert.deepEqual(jobErrorInfo.parse({ code: 'engine_failed', message: 'exit 1' }), { code: 'engine_failed', message: 'exit 1' });
});

test('a job error with a code this version does not know reads as internal, the code kept in the message', () => {
  assert.deepEqual(jobErrorInfo.parse({ code: 'quantum_flux', message: 'the engine' }), { code: 'internal', message: '[quantum_flux] the engine' });
  const finish = jobFinishRequest.parse({ lease_id: 'l', status: 'failed', error: { code: 'quantum_flux', message: 'x' } });
  assert.equal(finish.error?.code, 'internal');
});

test('an error document with an unknown code reads as internal; with a known one, that code', () => {
  const document = (code: string) => ({ errors: [{ status: '409', code, title: 't' }] });
  assert.equal(errorDocument.parse(document('lease_stale')).errors[0]?.code, 'lease_stale');
  assert.equal(errorDocument.parse(document('not_a_code')).errors[0]?.code, 'internal');
});
