// The pool token as an AWS Secrets Manager ARN (OUTPOST_AGENT_TOKEN=arn:…),
// as the Scalr agent's serverless task passes it: a single-mode agent reads
// the secret with the real AWS SDK from moto's server (scripts/start-moto.sh,
// at OUTPOST_TEST_AWS_ENDPOINT), registers with the token and runs its job
// with the real OpenTofu; a secret that does not exist stops it at start
// with a sentence and exit code 2. The token never reaches its log.
//
// Skipped without OUTPOST_TEST_AWS_ENDPOINT, except under CI=true, where
// that fails the test: .ci/run starts moto.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import { startAgent } from '../support/cluster.ts';
import { createRun, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { exitCodeOf, quickConfig } from '../support/job-control.ts';
import { setupCluster } from '../support/test-cluster.ts';

const endpoint = process.env.OUTPOST_TEST_AWS_ENDPOINT;
if (endpoint === undefined && process.env.CI === 'true') throw new Error('CI must test the pool token from Secrets Manager, but OUTPOST_TEST_AWS_ENDPOINT is not set (scripts/start-moto.sh starts moto and prints it)');
const skip = endpoint === undefined ? 'no AWS emulator: set OUTPOST_TEST_AWS_ENDPOINT (scripts/start-moto.sh)' : false;
// moto takes any credentials; they only have to be there.
const aws = { AWS_ENDPOINT_URL: endpoint ?? '', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'eu-west-1' };

test('a single-mode agent reads its pool token from Secrets Manager, runs its job, and never logs the token', { skip }, async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const { server, pool, workspace } = cluster;
  const client = new SecretsManagerClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  t.after(() => client.destroy());
  const secret = await client.send(new CreateSecretCommand({ Name: `outpost/pool-token-${randomBytes(4).toString('hex')}`, SecretString: pool.token }));
  assert.ok(secret.ARN);
  const run = await createRun(server, workspace.id, await uploadConfiguration(server, workspace.id, quickConfig('secret')));

  const agent = await startAgent(server, { token: pool.token, t, env: { ...aws, OUTPOST_AGENT_TOKEN: secret.ARN, OUTPOST_AGENT_SINGLE: 'true' } });
  assert.equal(await exitCodeOf(agent), 0, agent.output());
  await cluster.waitForRun(run.id, ['planned', 'apply_queued']);
  assert.match(await readLog(server, relatedId(run, 'plan')), /Plan: 1 to add/);
  assert.doesNotMatch(agent.output(), new RegExp(pool.token.replace(/[.]/g, '\\.')), 'the token is not in the agent\'s log');
});

test('a pool token ARN naming no secret stops the agent at start with exit code 2 and the reason', { skip }, async (t) => {
  const cluster = await setupCluster(t, 'sqlite', { agents: 0 });
  const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:outpost/no-such-token-AbCdEf';
  const agent = await startAgent(cluster.server, { token: cluster.pool.token, t, env: { ...aws, OUTPOST_AGENT_TOKEN: arn, OUTPOST_AGENT_SINGLE: 'true' } });
  assert.equal(await exitCodeOf(agent), 2, agent.output());
  assert.match(agent.output(), /OUTPOST_AGENT_TOKEN names arn:aws:secretsmanager:eu-west-1:123456789012:secret:outpost\/no-such-token-AbCdEf, which could not be read: ResourceNotFoundException/);
});
