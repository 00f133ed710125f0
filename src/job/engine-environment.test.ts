import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobVariable } from '../protocol/agent-api.ts';
import { buildEngineEnvironment } from './engine-environment.ts';

const variable = (key: string, value: string, category: 'terraform' | 'env'): JobVariable => ({ key, value, category, hcl: false, sensitive: false });

describe('buildEngineEnvironment', () => {
  const built = buildEngineEnvironment({
    inherited: { PATH: '/usr/bin', HOME: '/home/job', OUTPOST_JOB_TOKEN: 'secret', SCALR_TOKEN: 'secret', outpost_lower: 'x', TF_LOG: 'info', NODE_COMPILE_CACHE: '/data/runtime/compile-cache' },
    serverUrl: 'http://cp:8480',
    token: 'job-token',
    cliConfigFile: '/work/outpost.tfrc',
    variables: [variable('region', 'eu-west-1', 'terraform'), variable('AWS_PROFILE', 'dev', 'env'), variable('TF_HTTP_ADDRESS', 'http://elsewhere', 'env')],
  });

  it('keeps the inherited environment without Outpost and SCALR variables', () => {
    assert.equal(built.env.PATH, '/usr/bin');
    assert.equal(built.env.TF_LOG, 'info');
    for (const name of Object.keys(built.env)) assert.doesNotMatch(name, /^(outpost|scalr)_/i);
    assert.equal(built.env.NODE_COMPILE_CACHE, undefined, 'the operation\'s compile cache is its own');
  });

  it('passes terraform variables as TF_VAR_ and env variables as they are', () => {
    assert.equal(built.env.TF_VAR_region, 'eu-west-1');
    assert.equal(built.env.AWS_PROFILE, 'dev');
  });

  it('points the http backend at the control plane, with the token only in the environment', () => {
    assert.equal(built.env.TF_HTTP_ADDRESS, 'http://cp:8480/api/agent/v1/job/state');
    assert.equal(built.env.TF_HTTP_LOCK_ADDRESS, 'http://cp:8480/api/agent/v1/job/state/lock');
    assert.equal(built.env.TF_HTTP_UNLOCK_ADDRESS, 'http://cp:8480/api/agent/v1/job/state/lock');
    assert.equal(built.env.TF_HTTP_LOCK_METHOD, 'POST');
    assert.equal(built.env.TF_HTTP_UNLOCK_METHOD, 'DELETE');
    assert.equal(built.env.TF_HTTP_USERNAME, 'job');
    assert.equal(built.env.TF_HTTP_PASSWORD, 'job-token');
    assert.equal(built.env.TF_HTTP_RETRY_MAX, '64', 'the state backend rides out a control plane restart');
    assert.equal(built.env.TF_IN_AUTOMATION, '1');
    assert.equal(built.env.TF_INPUT, '0');
    assert.equal(built.env.TF_CLI_CONFIG_FILE, '/work/outpost.tfrc');
  });

  it('does not let a workspace variable redirect the state backend, and says so', () => {
    assert.deepEqual(built.overridden, ['TF_HTTP_ADDRESS']);
  });

  it('refuses a variable the engine could not receive', () => {
    assert.throws(() =>
      buildEngineEnvironment({ inherited: {}, serverUrl: 'http://cp', token: 't', cliConfigFile: '/f', variables: [variable('A=B', 'x', 'env')] }),
    );
  });
});
