import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jobBaseEnvironment, loadAgentConfig } from './config.ts';

test('the job environment carries neither Outpost settings nor the Docker client settings', () => {
  const env = jobBaseEnvironment({
    PATH: '/usr/bin',
    HTTPS_PROXY: 'http://proxy:3128',
    OUTPOST_AGENT_TOKEN: 'pool-token',
    SCALR_TOKEN: 'pool-token',
    DOCKER_HOST: 'tcp://10.0.0.1:2375',
    DOCKER_CERT_PATH: '/certs',
    DOCKER_TLS_VERIFY: '1',
  });
  assert.deepEqual(env, { PATH: '/usr/bin', HTTPS_PROXY: 'http://proxy:3128' });
});

test('job containers get a process limit: 4096 by default, or OUTPOST_AGENT_CONTAINER_TASK_PIDS_LIMIT', () => {
  assert.equal(loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x' }).containerTaskPidsLimit, 4096);
  assert.equal(loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x', OUTPOST_AGENT_CONTAINER_TASK_PIDS_LIMIT: '512' }).containerTaskPidsLimit, 512);
  assert.throws(() => loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x', OUTPOST_AGENT_CONTAINER_TASK_PIDS_LIMIT: 'none' }));
});
