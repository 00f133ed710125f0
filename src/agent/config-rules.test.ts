// The agent's settings that must agree (config-rules.ts): each pair is
// refused with a sentence naming both, and the neighbouring values that do
// agree are accepted.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../config/settings.ts';
import { loadAgentConfig } from './config.ts';

const token = { OUTPOST_AGENT_TOKEN: 'opp_x' };

function refusal(env: Record<string, string>): string {
  try {
    loadAgentConfig({ ...token, ...env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`the settings were accepted: ${JSON.stringify(env)}`);
}

const accepts = (env: Record<string, string>) => assert.doesNotThrow(() => loadAgentConfig({ ...token, ...env }));

test('the defaults agree with each other', () => accepts({}));

test('single mode with a concurrency above 1', () => {
  assert.match(refusal({ OUTPOST_AGENT_SINGLE: 'true', OUTPOST_AGENT_CONCURRENCY: '4' }), /OUTPOST_AGENT_SINGLE=true runs exactly one job, but OUTPOST_AGENT_CONCURRENCY=4/);
  // The Scalr names reach the same rule.
  assert.match(refusal({ SCALR_SINGLE: 'true', SCALR_AGENT_CONCURRENCY: '2' }), /OUTPOST_AGENT_CONCURRENCY=2/);
  accepts({ OUTPOST_AGENT_SINGLE: 'true', OUTPOST_AGENT_CONCURRENCY: '1' });
  accepts({ OUTPOST_AGENT_SINGLE: 'false', OUTPOST_AGENT_CONCURRENCY: '4' });
});

test('a memory guard limit above the docker container limit', () => {
  const docker = { OUTPOST_AGENT_DRIVER: 'docker', OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT: '2048' };
  assert.match(refusal({ ...docker, OUTPOST_AGENT_MEMORY_LIMIT_MB: '4096' }), /OUTPOST_AGENT_MEMORY_LIMIT_MB=4096 is above OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT=2048/);
  accepts({ ...docker, OUTPOST_AGENT_MEMORY_LIMIT_MB: '2048' });
  // The local driver has no container limit to contradict.
  accepts({ OUTPOST_AGENT_DRIVER: 'local', OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT: '2048', OUTPOST_AGENT_MEMORY_LIMIT_MB: '4096' });
});

test('drain with no drain time, and grace with no grace time', () => {
  assert.match(refusal({ OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'drain', OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT: '0' }), /ON_STOP_ACTION=drain .* OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT=0/);
  assert.match(
    refusal({ SCALR_AGENT_WORKER_ON_STOP_ACTION: 'grace-shutdown', SCALR_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '0' }),
    /ON_STOP_ACTION=grace .* OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT=0/,
  );
  accepts({ OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'grace', OUTPOST_AGENT_WORKER_DRAIN_TIMEOUT: '0' });
  accepts({ OUTPOST_AGENT_WORKER_ON_STOP_ACTION: 'force', OUTPOST_AGENT_WORKER_GRACE_SHUTDOWN_TIMEOUT: '0' });
});

test('a provider mirror port while the provider cache is off', () => {
  assert.match(
    refusal({ OUTPOST_AGENT_PROVIDER_CACHE_ENABLED: 'false', OUTPOST_AGENT_PROVIDER_MIRROR_PORT: '9999' }),
    /OUTPOST_AGENT_PROVIDER_MIRROR_PORT=9999 .* OUTPOST_AGENT_PROVIDER_CACHE_ENABLED=false/,
  );
  accepts({ OUTPOST_AGENT_PROVIDER_CACHE_ENABLED: 'false' });
  accepts({ OUTPOST_AGENT_PROVIDER_MIRROR_PORT: '9999' });
});

test('a health host while the health listener is off', () => {
  assert.match(refusal({ OUTPOST_AGENT_HEALTH_HOST: '127.0.0.1' }), /OUTPOST_AGENT_HEALTH_HOST is set, but the health listener is off/);
  accepts({ OUTPOST_AGENT_HEALTH_HOST: '127.0.0.1', OUTPOST_AGENT_HEALTH_PORT: '9090' });
});

test('the kubernetes driver needs a mode, a worker its node, and neither runs in single mode', () => {
  assert.match(refusal({ OUTPOST_AGENT_DRIVER: 'kubernetes' }), /OUTPOST_AGENT_DRIVER=kubernetes needs OUTPOST_AGENT_KUBERNETES_MODE/);
  assert.match(refusal({ OUTPOST_AGENT_DRIVER: 'local', OUTPOST_AGENT_KUBERNETES_MODE: 'worker' }), /OUTPOST_AGENT_KUBERNETES_MODE=worker needs OUTPOST_AGENT_DRIVER=kubernetes, but the driver is local/);
  assert.match(refusal({ OUTPOST_AGENT_DRIVER: 'kubernetes', OUTPOST_AGENT_KUBERNETES_MODE: 'worker' }), /needs OUTPOST_AGENT_KUBERNETES_NODE_NAME/);
  assert.match(refusal({ OUTPOST_AGENT_DRIVER: 'kubernetes', OUTPOST_AGENT_KUBERNETES_MODE: 'controller', OUTPOST_AGENT_SINGLE: 'true' }), /cannot run in single mode/);
  accepts({ OUTPOST_AGENT_DRIVER: 'kubernetes', OUTPOST_AGENT_KUBERNETES_MODE: 'controller' });
  accepts({ OUTPOST_AGENT_DRIVER: 'kubernetes', OUTPOST_AGENT_KUBERNETES_MODE: 'worker', OUTPOST_AGENT_KUBERNETES_NODE_NAME: 'node-1' });
});

test('a pool token from both the variable and a file; a job id without single mode', () => {
  assert.match(refusal({ OUTPOST_AGENT_TOKEN_FILE: '/run/secrets/token' }), /both OUTPOST_AGENT_TOKEN \(or SCALR_AGENT_TOKEN\) and OUTPOST_AGENT_TOKEN_FILE=\/run\/secrets\/token are set/);
  assert.match(refusal({ OUTPOST_AGENT_JOB_ID: 'job-abc' }), /OUTPOST_AGENT_JOB_ID=job-abc names the one job to run, which only a single-mode agent does/);
  assert.match(refusal({ OUTPOST_SINGLE: 'true', OUTPOST_AGENT_JOB_ID: 'not a job' }), /OUTPOST_AGENT_JOB_ID.*expected a job id/);
  accepts({ OUTPOST_SINGLE: 'true', OUTPOST_AGENT_JOB_ID: 'job-abc' });
});

test('a token file is read once, trimmed; an empty one or one with several words is refused', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-token-'));
  try {
    const file = path.join(dir, 'token');
    await writeFile(file, 'opp_from-file\n');
    assert.equal(loadAgentConfig({ OUTPOST_AGENT_TOKEN_FILE: file }).token, 'opp_from-file');
    await writeFile(file, '  \n');
    assert.throws(() => loadAgentConfig({ OUTPOST_AGENT_TOKEN_FILE: file }), /expected one pool token \(opp_…\), found an empty file/);
    await writeFile(file, 'opp_a opp_b');
    assert.throws(() => loadAgentConfig({ OUTPOST_AGENT_TOKEN_FILE: file }), /found several words/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
