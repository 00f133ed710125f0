// The AWS webhook receiver as it ships: scripts/bundle-aws-lambda.ts builds
// the Lambda zip, the test loads its index.mjs and calls `handler` through a
// small HTTP front that turns a POST into an API Gateway HTTP API (payload
// 2.0) event, the one stand-in here: moto cannot route API Gateway to a
// Lambda. Everything the handler does in AWS (Secrets Manager, ECS ListTasks
// and RunTask on Fargate) goes to moto's server (scripts/start-moto.sh, at
// OUTPOST_TEST_AWS_ENDPOINT), with the real AWS SDK inside the bundle.
//
// Skipped without OUTPOST_TEST_AWS_ENDPOINT, except under CI=true, where
// that fails the test.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { CreateClusterCommand, DescribeTasksCommand, ECSClient, ListTasksCommand, RegisterTaskDefinitionCommand } from '@aws-sdk/client-ecs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { lambdaIndexOf } from '../support/lambda-bundle.ts';
import { signatureHeader, type WebhookPayload } from '../../src/protocol/webhook-signature.ts';
import type { HttpApiEvent, HttpApiResult } from '../../deploy/aws/lambda/handler.ts';
import { readConfig } from '../../deploy/aws/lambda/config.ts';
import { explainEcsError, explainFailures } from '../../deploy/aws/lambda/ecs-launch.ts';
import { explainSecretError } from '../../deploy/aws/lambda/signing-secrets.ts';

const endpoint = process.env.OUTPOST_TEST_AWS_ENDPOINT;
if (endpoint === undefined && process.env.CI === 'true') throw new Error('CI must test the AWS webhook receiver, but OUTPOST_TEST_AWS_ENDPOINT is not set (scripts/start-moto.sh starts moto and prints it)');
const skip = endpoint === undefined ? 'no AWS emulator: set OUTPOST_TEST_AWS_ENDPOINT (scripts/start-moto.sh)' : false;

const root = path.resolve(import.meta.dirname, '..', '..');
const region = 'us-east-1';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const run = `t${randomBytes(4).toString('hex')}`;
const secret = `whsec_${randomBytes(16).toString('hex')}`;

let handler: (event: HttpApiEvent) => Promise<HttpApiResult>;
let front: Server;
let frontUrl: string;
let ecs: ECSClient;
let secrets: SecretsManagerClient;
let workDir: string;
const logLines: Record<string, unknown>[] = [];
let env: Record<string, string>;

/** One EC2 Query API call to moto (no EC2 client among the dependencies); moto reads the region from the credential scope and checks no signature. */
async function ec2(action: string, params: Record<string, string>): Promise<string> {
  const response = await fetch(endpoint!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${region}/ec2/aws4_request, SignedHeaders=host, Signature=0` },
    body: new URLSearchParams({ Action: action, Version: '2016-11-15', ...params }),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `${action}: ${text}`);
  return text;
}

const xmlValue = (xml: string, tag: string) => new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(xml)?.[1] ?? assert.fail(`no <${tag}> in ${xml}`);

async function extractIndex(zipFile: string, dir: string): Promise<string> {
  const code = await lambdaIndexOf(zipFile);
  const file = path.join(dir, 'index.mjs');
  await writeFile(file, code);
  return file;
}

// API Gateway passes text bodies as they are and base64-encodes the others.
const textual = /^(text\/|application\/(json|xml|javascript)|[^;]*\+json)/i;

function startFront(): Promise<string> {
  front = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
      const base64 = !textual.test(headers['content-type'] ?? '');
      const result = await handler({
        version: '2.0',
        routeKey: `${req.method} ${req.url}`,
        rawPath: req.url ?? '/',
        headers,
        body: base64 ? raw.toString('base64') : raw.toString('utf8'),
        isBase64Encoded: base64,
        requestContext: { requestId: randomUUID(), http: { method: req.method ?? 'GET', sourceIp: '127.0.0.1' } },
      });
      res.writeHead(result.statusCode, result.headers).end(result.body);
    });
  });
  return new Promise((resolve) => front.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(front.address() as { port: number }).port}/webhook`)));
}

before(async () => {
  if (skip) return;
  workDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-aws-handler-'));
  const zipFile = path.join(workDir, 'outpost-webhook-handler.zip');
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(root, 'scripts', 'bundle-aws-lambda.ts'), zipFile], { cwd: root });
  assert.equal(stdout.trim().split('\n').at(-1), zipFile, 'the bundling script prints the zip as its last line');
  Object.assign(process.env, { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: region });
  ({ handler } = (await import(pathToFileURL(await extractIndex(zipFile, workDir)).href)) as { handler: typeof handler });

  // The handler logs to stdout, as Lambda wants; the test keeps its lines and lets the rest through.
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = String(chunk);
    const lines = text.split('\n').filter((line) => line !== '');
    if (lines.length === 0 || !lines.every((line) => /^\{.*"level":.*\}$/.test(line))) return write(chunk, ...rest);
    for (const line of lines) logLines.push(JSON.parse(line) as Record<string, unknown>);
    return true;
  }) as typeof process.stdout.write;

  ecs = new ECSClient({ region, endpoint, credentials });
  secrets = new SecretsManagerClient({ region, endpoint, credentials });
  const vpc = xmlValue(await ec2('CreateVpc', { CidrBlock: '10.77.0.0/16' }), 'vpcId');
  // moto gives awsvpc tasks a network interface only in a VPC with DNS host names.
  await ec2('ModifyVpcAttribute', { VpcId: vpc, 'EnableDnsHostnames.Value': 'true' });
  const subnet = xmlValue(await ec2('CreateSubnet', { VpcId: vpc, CidrBlock: '10.77.1.0/24', AvailabilityZone: `${region}a` }), 'subnetId');
  const group = xmlValue(await ec2('CreateSecurityGroup', { VpcId: vpc, GroupName: `outpost-${run}`, GroupDescription: 'agent tasks' }), 'groupId');
  await ecs.send(new CreateClusterCommand({ clusterName: `outpost-${run}` }));
  await ecs.send(
    new RegisterTaskDefinitionCommand({
      family: `outpost-agent-${run}`,
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: '2048',
      memory: '4096',
      // moto wants the container's memory even when the task has it.
      containerDefinitions: [{ name: 'agent', image: 'outpost/agent-runner:latest', essential: true, memory: 4096 }],
    }),
  );
  const created = await secrets.send(new CreateSecretCommand({ Name: `outpost/${run}/signing`, SecretString: secret }));
  env = {
    OUTPOST_SIGNING_SECRET_ARN: created.ARN!,
    OUTPOST_ECS_CLUSTER: `outpost-${run}`,
    OUTPOST_TASK_DEFINITION: `outpost-agent-${run}`,
    OUTPOST_CONTAINER_NAME: 'agent',
    OUTPOST_SUBNETS: subnet,
    OUTPOST_SECURITY_GROUPS: group,
    OUTPOST_ASSIGN_PUBLIC_IP: 'ENABLED',
  };
  frontUrl = await startFront();
});

after(async () => {
  front?.close();
  ecs?.destroy();
  secrets?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The handler's settings for one test: the fixtures', with `changes` over them. */
function configure(changes: Record<string, string | undefined> = {}): void {
  for (const name of Object.keys(process.env)) if (name.startsWith('OUTPOST_')) delete process.env[name];
  for (const [name, value] of Object.entries({ ...env, ...changes })) if (value !== undefined) process.env[name] = value;
}

function payload(overrides: Partial<WebhookPayload> = {}): WebhookPayload {
  const id = randomUUID();
  return {
    event: 'job.queued',
    delivery_id: randomUUID(),
    created_at: new Date().toISOString(),
    organization: { name: 'acme' },
    pool: { id: `pool-${run}`, name: 'serverless' },
    job: { id: `job-${id}`, phase: 'plan', attempt: 1 },
    run: { id: `run-${id}`, url: `https://outpost.example.com/runs/run-${id}` },
    workspace: { id: `ws-${run}`, name: 'network (eu)#1' },
    ...overrides,
  };
}

interface SendOptions {
  secrets?: string[];
  timestamp?: number;
  headers?: Record<string, string | undefined>;
  body?: string;
  contentType?: string;
}

async function deliver(delivery: WebhookPayload, options: SendOptions = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = options.body ?? JSON.stringify(delivery);
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string | undefined> = {
    'content-type': options.contentType ?? 'application/json',
    'outpost-event': delivery.event,
    'outpost-delivery': delivery.delivery_id,
    'outpost-delivery-attempt': '1',
    'outpost-timestamp': String(timestamp),
    'outpost-signature': signatureHeader(options.secrets ?? [secret], timestamp, body),
    'idempotency-key': delivery.delivery_id,
    ...options.headers,
  };
  const sent = Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const response = await fetch(frontUrl, { method: 'POST', headers: sent, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function tasksStartedBy(startedBy: string): Promise<string[]> {
  const lists = await Promise.all(
    (['RUNNING', 'STOPPED'] as const).map((desiredStatus) => ecs.send(new ListTasksCommand({ cluster: env.OUTPOST_ECS_CLUSTER, startedBy, desiredStatus }))),
  );
  return lists.flatMap((list) => list.taskArns ?? []);
}

/** Status, code and (for a refusal) which check failed. */
const answered = (answer: { status: number; body: Record<string, unknown> }) => {
  const error = answer.body.error as { code?: string; reason?: string } | undefined;
  return error?.reason === undefined ? [answer.status, error?.code] : [answer.status, error.code, error.reason];
};
const logged = (event: string, deliveryId: string) => logLines.filter((line) => line.event === event && line.delivery_id === deliveryId);

test('a signed job.queued delivery starts one Fargate task for the job, and a retry of it starts none', { skip }, async () => {
  configure();
  const delivery = payload();
  const first = await deliver(delivery);
  assert.equal(first.status, 202, JSON.stringify(first.body));
  const taskArn = first.body.task_arn as string;
  assert.match(taskArn, /^arn:aws:ecs:us-east-1:\d{12}:task\//);

  const { tasks } = await ecs.send(new DescribeTasksCommand({ cluster: env.OUTPOST_ECS_CLUSTER, tasks: [taskArn], include: ['TAGS'] }));
  const task = tasks?.[0];
  assert.ok(task, 'ECS knows the task');
  assert.equal(task.launchType, 'FARGATE');
  assert.equal(task.startedBy, delivery.delivery_id);
  assert.match(task.taskDefinitionArn ?? '', new RegExp(`task-definition/outpost-agent-${run}:1$`));
  const override = task.overrides?.containerOverrides?.find((container) => container.name === 'agent');
  assert.deepEqual(
    Object.fromEntries((override?.environment ?? []).map(({ name, value }) => [name, value])),
    { OUTPOST_AGENT_JOB_ID: delivery.job!.id, OUTPOST_WEBHOOK_DELIVERY: delivery.delivery_id },
  );
  const tags = Object.fromEntries((task.tags ?? []).map(({ key, value }) => [key, value]));
  assert.deepEqual(tags, { 'outpost:pool': 'serverless', 'outpost:workspace': 'network _eu__1', 'outpost:run': delivery.run!.id, 'outpost:job': delivery.job!.id });
  assert.equal(logged('task_started', delivery.delivery_id).length, 1, JSON.stringify(logLines));

  const retry = await deliver(delivery, { headers: { 'outpost-delivery-attempt': '2' } });
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  assert.deepEqual(retry.body, { task_arn: taskArn, duplicate: true });
  assert.deepEqual(await tasksStartedBy(delivery.delivery_id), [taskArn], 'still one task for the delivery');
});

test('a body API Gateway passes base64-encoded is verified and accepted', { skip }, async () => {
  configure();
  const delivery = payload();
  const answer = await deliver(delivery, { contentType: 'application/octet-stream' });
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  assert.equal((await tasksStartedBy(delivery.delivery_id)).length, 1);
});

test('a delivery with a wrong signature, no signature headers or an old timestamp gets 401 and starts nothing', { skip }, async () => {
  configure();
  const wrong = payload();
  assert.deepEqual(answered(await deliver(wrong, { secrets: ['not-the-secret'] })), [401, 'signature_invalid', 'bad_signature']);

  const unsigned = payload();
  assert.deepEqual(answered(await deliver(unsigned, { headers: { 'outpost-signature': undefined, 'outpost-timestamp': undefined } })), [401, 'signature_invalid', 'missing_headers']);

  // A delivery captured ten minutes ago, replayed with its valid signature.
  const replayed = payload();
  assert.deepEqual(answered(await deliver(replayed, { timestamp: Math.floor(Date.now() / 1000) - 600 })), [401, 'signature_invalid', 'stale_timestamp']);

  for (const delivery of [wrong, unsigned, replayed]) assert.deepEqual(await tasksStartedBy(delivery.delivery_id), []);
  assert.equal(logged('delivery_rejected', wrong.delivery_id)[0]?.reason, 'bad_signature');
  assert.doesNotMatch(JSON.stringify(logLines), new RegExp(secret), 'the signing secret is never logged');
});

test('during a rotation the previous signing secret is still accepted, beside the current one', { skip }, async () => {
  const previous = secret;
  const current = `whsec_${randomBytes(16).toString('hex')}`;
  const rotated = await secrets.send(new CreateSecretCommand({ Name: `outpost/${run}/rotated`, SecretString: JSON.stringify({ current, previous }) }));
  configure({ OUTPOST_SIGNING_SECRET_ARN: rotated.ARN });

  const old = await deliver(payload(), { secrets: [previous] });
  assert.equal(old.status, 202, JSON.stringify(old.body));
  const both = await deliver(payload(), { secrets: [current, previous] });
  assert.equal(both.status, 202, JSON.stringify(both.body));
  const other = await deliver(payload(), { secrets: [`whsec_${randomBytes(16).toString('hex')}`] });
  assert.equal(other.status, 401, JSON.stringify(other.body));
});

test('a ping is answered 200 without starting a task', { skip }, async () => {
  configure();
  const ping = payload({ event: 'ping' });
  delete ping.job;
  const answer = await deliver(ping);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(answer.body, { ok: true });
  assert.deepEqual(await tasksStartedBy(ping.delivery_id), []);
});

test('a signed body that is not JSON, or not a delivery, gets 400', { skip }, async () => {
  configure();
  assert.deepEqual(answered(await deliver(payload(), { body: '{"event": "job.queued",' })), [400, 'invalid_request', 'bad_payload']);
  const noJob = payload();
  delete noJob.job;
  const shapeless = await deliver(noJob);
  assert.equal(shapeless.status, 400, JSON.stringify(shapeless.body));
  assert.deepEqual(await tasksStartedBy(noJob.delivery_id), []);
});

test('a pool outside OUTPOST_ALLOWED_POOLS gets 403', { skip }, async () => {
  configure({ OUTPOST_ALLOWED_POOLS: `pool-a, pool-${run}` });
  assert.equal((await deliver(payload())).status, 202);
  configure({ OUTPOST_ALLOWED_POOLS: 'pool-a,pool-b' });
  const refused = payload();
  const answer = await deliver(refused);
  assert.equal(answer.status, 403, JSON.stringify(answer.body));
  assert.deepEqual(await tasksStartedBy(refused.delivery_id), []);
});

test('a cluster that does not exist is a 5xx and a log line naming it', { skip }, async () => {
  const cluster = `outpost-${run}-missing`;
  configure({ OUTPOST_ECS_CLUSTER: cluster });
  const delivery = payload();
  assert.deepEqual(answered(await deliver(delivery)), [500, 'cluster_not_found']);
  const [line] = logged('cluster_not_found', delivery.delivery_id);
  assert.ok(line, JSON.stringify(logLines.slice(-3)));
  assert.equal(line.level, 'error');
  assert.match(String(line.message), new RegExp(`ECS cluster ${cluster} does not exist`));
  assert.match(String(line.fix), /OUTPOST_ECS_CLUSTER/);
});

test('a signing secret that cannot be read is a 500 that names no ARN, and a log line that names it and the permission', { skip }, async () => {
  const arn = `arn:aws:secretsmanager:${region}:123456789012:secret:outpost/${run}/absent-AbCdEf`;
  configure({ OUTPOST_SIGNING_SECRET_ARN: arn });
  const delivery = payload();
  const answer = await deliver(delivery);
  assert.equal(answer.status, 500, JSON.stringify(answer.body));
  assert.doesNotMatch(JSON.stringify(answer.body), /arn:aws/);
  const [line] = logged('signing_secret_not_found', delivery.delivery_id);
  assert.ok(line, JSON.stringify(logLines.slice(-3)));
  assert.equal(line.secret_arn, arn);
  assert.match(String(line.message), new RegExp(`the signing secret ${arn.replace(/[/]/g, '\\/')} does not exist`));
  assert.match(String(line.fix), /secretsmanager:GetSecretValue/);
});

// What moto cannot produce (IAM denials, Fargate capacity), from the error
// texts AWS answers with: each becomes the line an operator acts on.
test('AWS errors the handler cannot provoke in moto map to a code, a status and a fix', () => {
  const settings = readConfig({
    OUTPOST_SIGNING_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:outpost/signing-AbCdEf',
    OUTPOST_ECS_CLUSTER: 'outpost',
    OUTPOST_TASK_DEFINITION: 'outpost-agent',
    OUTPOST_CONTAINER_NAME: 'agent',
    OUTPOST_SUBNETS: 'subnet-0abc',
  });
  assert.ok(settings.ok);
  const config = settings.config;
  const aws = (name: string, message: string, status = 400) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
  const role = 'arn:aws:sts::123456789012:assumed-role/outpost-webhook/outpost-webhook';
  const cases: [Error, string, number, RegExp][] = [
    [aws('AccessDeniedException', `User: ${role} is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/outpost-task`), 'pass_role_denied', 500, /iam:PassRole on the task role and the task execution role/],
    [aws('AccessDeniedException', `User: ${role} is not authorized to perform: ecs:RunTask on resource: arn:aws:ecs:eu-west-1:123456789012:task-definition/outpost-agent:3 because no identity-based policy allows the ecs:RunTask action`), 'run_task_denied', 500, /ecs:RunTask on task-definition\/outpost-agent:\*/],
    [aws('InvalidParameterException', "Error retrieving subnet information for [subnet-0abc]: The subnet ID 'subnet-0abc' does not exist"), 'network_configuration_invalid', 500, /OUTPOST_SUBNETS/],
    [aws('InvalidParameterException', 'Error retrieving security group information for [sg-0def]: The security group does not exist'), 'network_configuration_invalid', 500, /OUTPOST_SECURITY_GROUPS/],
    [aws('ClientException', 'TaskDefinition is inactive'), 'task_definition_unusable', 500, /ACTIVE Fargate task definition/],
    [aws('InvalidParameterException', 'Override for container named agent is not a container in the TaskDefinition.'), 'container_not_found', 500, /OUTPOST_CONTAINER_NAME/],
    [aws('ClusterNotFoundException', 'Cluster not found.'), 'cluster_not_found', 500, /OUTPOST_ECS_CLUSTER/],
    [aws('ThrottlingException', 'Rate exceeded'), 'ecs_unavailable', 503, /./],
    [aws('ServerException', 'Service Unavailable', 503), 'ecs_unavailable', 503, /./],
  ];
  for (const [error, code, status, fix] of cases) {
    const explained = explainEcsError(error, config, 'ecs:RunTask');
    assert.equal(explained.code, code, error.message);
    assert.equal(explained.status, status, error.message);
    if (status === 500) assert.match(explained.fix ?? '', fix, error.message);
  }
  const denied = explainEcsError(aws('AccessDeniedException', `User: ${role} is not authorized to perform: ecs:ListTasks on resource: *`), config, 'ecs:ListTasks');
  assert.equal(denied.code, 'list_tasks_denied');

  const capacity = explainFailures([{ arn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/outpost', reason: 'Capacity is unavailable at this time. Please try again later or in a different availability zone' }], config);
  assert.deepEqual([capacity.code, capacity.status], ['capacity_unavailable', 503]);
  assert.equal(explainFailures([{ reason: 'RESOURCE:ENI' }], config).status, 503);
  assert.equal(explainFailures([{ reason: 'AGENT' }], config).status, 503);

  const secretArn = config.signingSecretArn;
  const unreadable = explainSecretError(aws('AccessDeniedException', `User: ${role} is not authorized to perform: secretsmanager:GetSecretValue on resource: ${secretArn}`), secretArn);
  assert.equal(unreadable.code, 'signing_secret_denied');
  assert.equal(unreadable.retry, false);
  assert.match(unreadable.fix ?? '', new RegExp(`secretsmanager:GetSecretValue on ${secretArn.replace(/[/]/g, '\\/')}`));
  assert.equal(explainSecretError(aws('InternalServiceError', 'try again', 500), secretArn).retry, true);
});
