import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../config/settings.ts';
import { loadJobConfig } from './config.ts';

const complete = {
  OUTPOST_JOB_SERVER_URL: 'http://127.0.0.1:8480/',
  OUTPOST_JOB_TOKEN: 'job-token-value',
  OUTPOST_JOB_WORKDIR: '/data/jobs/j1',
  OUTPOST_JOB_ENGINE_PATH: '/data/engines/tofu',
};

describe('loadJobConfig', () => {
  it('reads the contract the agent starts the job with', () => {
    const config = loadJobConfig(complete);
    assert.equal(config.serverUrl, 'http://127.0.0.1:8480');
    assert.equal(config.token, 'job-token-value');
    assert.equal(config.workdir, '/data/jobs/j1');
    assert.equal(config.maxArchiveMb, 512);
  });

  it('names every missing required variable', () => {
    assert.throws(() => loadJobConfig({ OUTPOST_JOB_SERVER_URL: 'http://x' }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, ['OUTPOST_JOB_TOKEN is required', 'OUTPOST_JOB_WORKDIR is required', 'OUTPOST_JOB_ENGINE_PATH is required']);
      return true;
    });
  });

  it('refuses relative paths and never echoes the token', () => {
    assert.throws(() => loadJobConfig({ ...complete, OUTPOST_JOB_WORKDIR: 'jobs/j1', OUTPOST_JOB_MAX_ARCHIVE_MB: '0' }), /OUTPOST_JOB_WORKDIR.*absolute path[\s\S]*OUTPOST_JOB_MAX_ARCHIVE_MB/);
    assert.throws(() => loadJobConfig({ ...complete, OUTPOST_JOB_SERVER_URL: 'ftp://x' }), (error: unknown) => !String(error).includes('job-token-value'));
  });
});
