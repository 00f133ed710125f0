import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommanderError } from '@commander-js/extra-typings';
import { ConfigError } from '../config/settings.ts';
import { ApiError, ServerUnreachableError, apiErrorFromResponse } from './api-error.ts';
import { exitCodeFor, exitCodes, formatError, UsageError } from './exit-codes.ts';

describe('exitCodeFor', () => {
  const apiError = (status: number, code: string): ApiError => new ApiError({ status, code, detail: 'x' });
  const cases: [string, unknown, number][] = [
    ['401 token_invalid', apiError(401, 'token_invalid'), exitCodes.auth],
    ['401 token_revoked', apiError(401, 'token_revoked'), exitCodes.auth],
    ['403 forbidden', apiError(403, 'forbidden'), exitCodes.auth],
    ['404 not_found', apiError(404, 'not_found'), exitCodes.api],
    ['409 already_exists', apiError(409, 'already_exists'), exitCodes.api],
    ['422 validation_failed', apiError(422, 'validation_failed'), exitCodes.api],
    ['500 internal', apiError(500, 'internal'), exitCodes.api],
    ['server unreachable', new ServerUnreachableError('http://127.0.0.1:8480', new Error('connect ECONNREFUSED')), exitCodes.api],
    ['usage error', new UsageError('no token'), exitCodes.usage],
    ['bad environment value', new ConfigError(['OUTPOST_URL="x": expected a URL']), exitCodes.usage],
    ['commander usage error', new CommanderError(1, 'commander.unknownOption', 'error: unknown option'), exitCodes.usage],
    ['help shown', new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), exitCodes.success],
    ['anything else', new Error('boom'), exitCodes.failed],
  ];
  for (const [name, error, expected] of cases) {
    it(`${name} → ${expected}`, () => assert.equal(exitCodeFor(error), expected));
  }
});

describe('formatError', () => {
  it('prints an API error as `Error: <detail> [<code>]`', () => {
    const error = new ApiError({ status: 404, code: 'not_found', detail: 'workspace network not found' });
    assert.equal(formatError(error), 'Error: workspace network not found [not_found]');
  });

  it('never shows a secret, wherever it appears', () => {
    const error = new ApiError({ status: 401, code: 'token_invalid', detail: 'Bearer opa_abcdef123 rejected (opa_abcdef123)' });
    assert.equal(formatError(error, ['opa_abcdef123']), 'Error: Bearer <redacted> rejected (<redacted>) [token_invalid]');
  });
});

describe('apiErrorFromResponse', () => {
  it('reads the first error of a JSON:API error document', () => {
    const body = JSON.stringify({ errors: [{ status: '422', code: 'validation_failed', title: 'the request failed validation', detail: 'name: too long' }] });
    const error = apiErrorFromResponse(422, body, 'http://x/api/v2/workspaces');
    assert.deepEqual([error.status, error.code, error.detail], [422, 'validation_failed', 'name: too long']);
  });

  it('falls back to the title when there is no detail', () => {
    const body = JSON.stringify({ errors: [{ status: '409', code: 'conflict', title: 'the resource is in a state that does not allow this' }] });
    assert.equal(apiErrorFromResponse(409, body, 'u').detail, 'the resource is in a state that does not allow this');
  });

  it('turns a non-JSON answer (a proxy page) into the closest catalogue code', () => {
    const bad = apiErrorFromResponse(502, '<html>Bad Gateway</html>', 'http://x/api/v2/runs');
    assert.deepEqual([bad.status, bad.code, bad.detail], [502, 'internal', 'HTTP 502 from http://x/api/v2/runs']);
    const denied = apiErrorFromResponse(403, '', 'http://x/y');
    assert.equal(denied.code, 'forbidden');
    assert.equal(denied.isAuthFailure, true);
  });
});
