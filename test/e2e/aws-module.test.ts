// The AWS module (deploy/aws) and its example (examples/aws-serverless)
// with the real OpenTofu: always `tofu fmt`; then, with the hashicorp/aws
// provider built from its Go module (scripts/build-aws-provider.sh, into a
// filesystem mirror named by OUTPOST_TEST_AWS_PROVIDER_MIRROR), init,
// validate and apply of the example against moto's server (at
// OUTPOST_TEST_AWS_ENDPOINT), a plan that must show no change, and destroy.
// Between apply and destroy, the bundled handler runs with the environment
// the module gave the Lambda function and starts a task of the module's
// task definition: the module and the handler agree on every setting.
//
// Without the provider mirror the apply test is skipped with the reason,
// also under CI=true (building the provider takes about 25 minutes); with
// it, a missing moto fails under CI=true.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { DescribeTaskDefinitionCommand, DescribeTasksCommand, ECSClient } from '@aws-sdk/client-ecs';
import { lambdaIndexOf } from '../support/lambda-bundle.ts';
import { signatureHeader, type WebhookPayload } from '../../src/protocol/webhook-signature.ts';
import type { HttpApiEvent, HttpApiResult } from '../../deploy/aws/lambda/handler.ts';
import { tofuBinary } from '../support/toolchain.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const mirror = process.env.OUTPOST_TEST_AWS_PROVIDER_MIRROR;
const endpoint = process.env.OUTPOST_TEST_AWS_ENDPOINT;
if (mirror !== undefined && endpoint === undefined && process.env.CI === 'true') {
  throw new Error('CI must apply the AWS module against moto, but OUTPOST_TEST_AWS_ENDPOINT is not set (scripts/start-moto.sh starts moto and prints it)');
}
const applySkip =
  mirror === undefined
    ? 'the hashicorp/aws provider is not built: run `bash scripts/build-aws-provider.sh` (about 25 minutes, once) and set OUTPOST_TEST_AWS_PROVIDER_MIRROR to the directory it prints'
    : endpoint === undefined
      ? 'no AWS emulator: set OUTPOST_TEST_AWS_ENDPOINT (scripts/start-moto.sh)'
      : false;
const region = 'us-east-1';
// moto takes any credentials; they only have to be there.
const aws = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: region };

test('deploy/aws and examples/aws-serverless are formatted as `tofu fmt` writes them', async () => {
  const { stdout } = await run(tofuBinary(), ['fmt', '-check', '-recursive', '-diff', 'deploy/aws', 'examples/aws-serverless'], { cwd: root }).catch((error: { stdout?: string; stderr?: string }) => {
    assert.fail(`tofu fmt -check failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
  assert.equal(stdout, '');
});

/** The HCL of a provider "aws" block pointing every service the example uses at moto. */
function motoProvider(url: string): string {
  const services = ['apigatewayv2', 'ec2', 'ecs', 'iam', 'lambda', 'logs', 'secretsmanager', 'sts'];
  return `provider "aws" {
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  endpoints {
${services.map((service) => `    ${service} = "${url}"`).join('\n')}
  }
}
`;
}

async function tofu(cwd: string, env: NodeJS.ProcessEnv, args: string[], allowed: number[] = [0]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(tofuBinary(), args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    const result = { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
    if (!allowed.includes(result.code)) assert.fail(`tofu ${args.join(' ')} exited with ${result.code}:\n${result.output}`);
    return result;
  }
}

/** The Lambda function's configuration from moto's Lambda REST API (no Lambda client among the dependencies). */
async function functionEnvironment(url: string, name: string): Promise<Record<string, string>> {
  const response = await fetch(`${url}/2015-03-31/functions/${encodeURIComponent(name)}/configuration`, {
    headers: { authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${region}/lambda/aws4_request, SignedHeaders=host, Signature=0` },
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  const configuration = JSON.parse(text) as { Runtime?: string; Handler?: string; Environment?: { Variables?: Record<string, string> } };
  assert.equal(configuration.Runtime, 'nodejs22.x');
  assert.equal(configuration.Handler, 'index.handler');
  return configuration.Environment?.Variables ?? {};
}

test('the example applies against moto with the provider built from source, plans no change after, and destroys', { skip: applySkip, timeout: 15 * 60_000 }, async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'outpost-aws-module-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  // The example's module source is relative (../../deploy/aws): the copy keeps the layout.
  const moduleDir = path.join(work, 'deploy', 'aws');
  const exampleDir = path.join(work, 'examples', 'aws-serverless');
  await mkdir(moduleDir, { recursive: true });
  for (const file of await readdir(path.join(root, 'deploy', 'aws'))) {
    if (file.endsWith('.tf')) await cp(path.join(root, 'deploy', 'aws', file), path.join(moduleDir, file));
  }
  await cp(path.join(root, 'examples', 'aws-serverless'), exampleDir, { recursive: true });
  // The zip where the module looks for it by default, built as it ships.
  const zipFile = path.join(moduleDir, 'dist', 'outpost-webhook-handler.zip');
  await run(process.execPath, [path.join(root, 'scripts', 'bundle-aws-lambda.ts'), zipFile], { cwd: root });
  // An override file merges into the example's provider block: only the endpoints change.
  await writeFile(path.join(exampleDir, 'moto_override.tf'), motoProvider(endpoint!));

  const cliConfig = path.join(work, 'tofurc');
  await writeFile(
    cliConfig,
    `provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(mirror)}
    include = ["registry.opentofu.org/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.opentofu.org/hashicorp/aws"]
  }
}
`,
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: work,
    TF_CLI_CONFIG_FILE: cliConfig,
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
    ...aws,
  };
  const prefix = `op-${randomBytes(3).toString('hex')}`;
  const signingSecret = `whsec_${randomBytes(16).toString('hex')}`;
  const vars = ['-var', `name_prefix=${prefix}`, '-var', `signing_secret=${signingSecret}`, '-var', `agent_token=opp_${randomBytes(16).toString('hex')}`, '-var', `region=${region}`];

  await tofu(exampleDir, env, ['init', '-input=false', '-no-color']);
  await tofu(exampleDir, env, ['validate', '-no-color']);
  try {
    await applyAndCheck(t, exampleDir, env, vars, { prefix, signingSecret, zipFile, work });
  } finally {
    // Also after a failed apply: what it created goes too.
    await tofu(exampleDir, env, ['destroy', '-auto-approve', '-input=false', '-no-color', ...vars]);
  }
});

interface Applied {
  prefix: string;
  signingSecret: string;
  zipFile: string;
  work: string;
}

async function applyAndCheck(t: TestContext, exampleDir: string, env: NodeJS.ProcessEnv, vars: string[], { prefix, signingSecret, zipFile, work }: Applied): Promise<void> {
  await tofu(exampleDir, env, ['apply', '-auto-approve', '-input=false', '-no-color', ...vars]);

  const plan = await tofu(exampleDir, env, ['plan', '-detailed-exitcode', '-input=false', '-no-color', ...vars], [0, 2]);
  assert.equal(plan.code, 0, `a plan right after apply shows changes:\n${plan.output}`);

  const outputs = JSON.parse((await tofu(exampleDir, env, ['output', '-json'])).output) as Record<string, { value: unknown }>;
  const webhookUrl = String(outputs.webhook_url?.value);
  assert.match(webhookUrl, /^https?:\/\/[^/]+\/webhook$/, `webhook_url ${webhookUrl}`);
  assert.deepEqual(outputs.log_group_names?.value, { lambda: `/aws/lambda/${prefix}-webhook`, tasks: `/ecs/${prefix}-agent` });

  // The handler, run with the function's environment as the module set it, starts a task of the module's task definition.
  const functionEnv = await functionEnvironment(endpoint!, `${prefix}-webhook`);
  assert.equal(functionEnv.OUTPOST_ECS_CLUSTER, prefix);
  const bundle = path.join(work, 'index.mjs');
  await writeFile(bundle, await lambdaIndexOf(zipFile));
  Object.assign(process.env, aws, { AWS_ENDPOINT_URL: endpoint }, functionEnv);
  const { handler } = (await import(pathToFileURL(bundle).href)) as { handler: (event: HttpApiEvent) => Promise<HttpApiResult> };
  const delivery: WebhookPayload = {
    event: 'job.queued',
    delivery_id: randomUUID(),
    created_at: new Date().toISOString(),
    organization: { name: 'acme' },
    pool: { id: 'pool-serverless', name: 'serverless' },
    job: { id: 'job-module', phase: 'plan', attempt: 1 },
    run: { id: 'run-module', url: 'https://outpost.example.com/runs/run-module' },
    workspace: { id: 'ws-module', name: 'module' },
  };
  const body = JSON.stringify(delivery);
  const timestamp = Math.floor(Date.now() / 1000);
  const result = await handler({
    version: '2.0',
    headers: { 'content-type': 'application/json', 'outpost-timestamp': String(timestamp), 'outpost-signature': signatureHeader([signingSecret], timestamp, body), 'outpost-delivery': delivery.delivery_id },
    body,
    isBase64Encoded: false,
    requestContext: { requestId: randomUUID(), http: { method: 'POST' } },
  });
  assert.equal(result.statusCode, 202, result.body);

  const ecs = new ECSClient({ region, endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  t.after(() => ecs.destroy());
  const { tasks } = await ecs.send(new DescribeTasksCommand({ cluster: prefix, tasks: [(JSON.parse(result.body) as { task_arn: string }).task_arn] }));
  const { taskDefinition } = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: tasks?.[0]?.taskDefinitionArn }));
  const container = taskDefinition?.containerDefinitions?.[0];
  assert.equal(container?.name, 'agent');
  const environment = Object.fromEntries((container?.environment ?? []).map(({ name, value }) => [name, value]));
  assert.equal(environment.OUTPOST_AGENT_SINGLE, 'true');
  assert.equal(environment.OUTPOST_AGENT_DRIVER, 'local');
  assert.deepEqual(container?.secrets?.map((secret) => secret.name), ['OUTPOST_AGENT_TOKEN']);
  assert.equal(container?.stopTimeout, 120);
  assert.equal(container?.logConfiguration?.options?.['awslogs-group'], `/ecs/${prefix}-agent`);
}
