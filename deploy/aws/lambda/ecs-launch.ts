// Starting the agent task for a queued job, once per delivery.
//
// Idempotency: the task is started with startedBy (and RunTask's
// clientToken) derived from the delivery id, which the control plane keeps
// on every retry of a delivery; before RunTask, ListTasks asks for a task
// started by it. ECS lists a stopped task for about an hour only, so a
// retry more than an hour after the first attempt's task stopped starts a
// second task; that agent finds its job taken and exits on its idle timeout.
//
// AWS errors become LaunchErrors that say what to change, per the Scalr
// agent's installation guide's troubleshooting: `status` is 500 when a
// setting is wrong (the control plane keeps retrying, so the job starts once
// it is fixed) and 503 when AWS may succeed on a later attempt.
import { createHash } from 'node:crypto';
import { ListTasksCommand, RunTaskCommand, type ECSClient, type Failure, type Tag } from '@aws-sdk/client-ecs';
import type { WebhookPayload } from '../../../src/protocol/webhook-signature.ts';
import type { ReceiverConfig } from './config.ts';

export class LaunchError extends Error {
  readonly code: string;
  readonly status: 500 | 503;
  readonly fix: string | undefined;
  readonly awsError: string | undefined;
  constructor(code: string, message: string, options: { status: 500 | 503; fix?: string; awsError?: string }) {
    super(message);
    this.name = 'LaunchError';
    this.code = code;
    this.status = options.status;
    this.fix = options.fix;
    this.awsError = options.awsError;
  }
}

/** The delivery id as ECS accepts it in startedBy and clientToken; a hash when it does not fit. */
export function startedByFor(deliveryId: string): string {
  if (/^[A-Za-z0-9_/-]{1,36}$/.test(deliveryId)) return deliveryId;
  return `d-${createHash('sha256').update(deliveryId).digest('hex').slice(0, 34)}`;
}

/** A tag value ECS accepts: letters, digits, spaces and `_ . : / = + - @`, up to 256 characters, no `aws:` prefix. */
export function tagValue(value: string): string {
  const cleaned = value.replace(/[^\p{L}\p{N}\p{Zs}_.:/=+\-@]/gu, '_').slice(0, 256);
  return /^aws:/i.test(cleaned) ? `_${cleaned.slice(0, 255)}` : cleaned;
}

export function taskTags(payload: WebhookPayload): Tag[] {
  const tags: Tag[] = [{ key: 'outpost:pool', value: tagValue(payload.pool.name || payload.pool.id) }];
  if (payload.workspace) tags.push({ key: 'outpost:workspace', value: tagValue(payload.workspace.name || payload.workspace.id) });
  if (payload.run) tags.push({ key: 'outpost:run', value: tagValue(payload.run.id) });
  if (payload.job) tags.push({ key: 'outpost:job', value: tagValue(payload.job.id) });
  return tags;
}

/** The task an earlier attempt of this delivery started, running or stopped within the last hour. */
export async function findTask(ecs: ECSClient, config: ReceiverConfig, startedBy: string): Promise<string | undefined> {
  // ListTasks returns one desired status per call; RUNNING is its default and includes PENDING tasks.
  const statuses = ['RUNNING', 'STOPPED'] as const;
  try {
    const answers = await Promise.all(statuses.map((desiredStatus) => ecs.send(new ListTasksCommand({ cluster: config.cluster, startedBy, desiredStatus }))));
    return answers.flatMap((answer) => answer.taskArns ?? [])[0];
  } catch (error) {
    throw explainEcsError(error, config, 'ecs:ListTasks');
  }
}

export async function runTask(ecs: ECSClient, config: ReceiverConfig, payload: WebhookPayload, startedBy: string): Promise<string> {
  let answer;
  try {
    answer = await ecs.send(
      new RunTaskCommand({
        cluster: config.cluster,
        taskDefinition: config.taskDefinition,
        launchType: 'FARGATE',
        count: 1,
        startedBy,
        clientToken: startedBy,
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: config.subnets,
            ...(config.securityGroups.length > 0 ? { securityGroups: config.securityGroups } : {}),
            assignPublicIp: config.assignPublicIp,
          },
        },
        overrides: {
          containerOverrides: [
            {
              name: config.containerName,
              environment: [
                { name: 'OUTPOST_AGENT_JOB_ID', value: payload.job!.id },
                { name: 'OUTPOST_WEBHOOK_DELIVERY', value: payload.delivery_id },
              ],
            },
          ],
        },
        tags: taskTags(payload),
        // The module's tags (cost allocation) reach the task too.
        propagateTags: 'TASK_DEFINITION',
      }),
    );
  } catch (error) {
    throw explainEcsError(error, config, 'ecs:RunTask');
  }
  const arn = answer.tasks?.[0]?.taskArn;
  if (arn !== undefined) return arn;
  throw explainFailures(answer.failures ?? [], config);
}

function awsErrorOf(error: unknown): { name: string; message: string; status: number | undefined } {
  const { name, message, $metadata } = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  return { name: name ?? 'Error', message: message ?? String(error), status: $metadata?.httpStatusCode };
}

export function explainEcsError(error: unknown, config: ReceiverConfig, action: 'ecs:RunTask' | 'ecs:ListTasks'): LaunchError {
  const aws = awsErrorOf(error);
  const awsError = `${aws.name}: ${aws.message}`;
  const setting = (code: string, message: string, fix: string) => new LaunchError(code, message, { status: 500, fix, awsError });
  const text = aws.message;

  if (aws.name === 'AccessDeniedException' || aws.name === 'AccessDenied' || /not authorized to perform/i.test(text)) {
    if (/iam:PassRole/i.test(text)) {
      return setting('pass_role_denied', 'the Lambda function may not pass the task\'s roles to ECS (iam:PassRole denied)', 'give the Lambda function\'s role iam:PassRole on the task role and the task execution role of the task definition, with the condition iam:PassedToService = ecs-tasks.amazonaws.com');
    }
    if (/ecs:TagResource/i.test(text)) {
      return setting('tag_resource_denied', 'the Lambda function may not tag the task it starts (ecs:TagResource denied)', `give the Lambda function's role ecs:TagResource on the tasks of cluster ${config.cluster} (condition ecs:CreateAction = RunTask)`);
    }
    if (action === 'ecs:ListTasks' || /ecs:ListTasks/i.test(text)) {
      return setting('list_tasks_denied', `the Lambda function may not list the tasks of cluster ${config.cluster} (ecs:ListTasks denied), which it does to start one task per delivery`, `give the Lambda function's role ecs:ListTasks with the condition ecs:cluster = the ARN of ${config.cluster}`);
    }
    return setting('run_task_denied', `the Lambda function may not run task definition ${config.taskDefinition} on cluster ${config.cluster} (ecs:RunTask denied)`, `give the Lambda function's role ecs:RunTask on task-definition/${familyOf(config.taskDefinition)}:* (the task definition's ARN must match the policy's resource)`);
  }
  if (aws.name === 'ClusterNotFoundException' || /cluster not found/i.test(text)) {
    return setting('cluster_not_found', `ECS cluster ${config.cluster} does not exist in this account and region`, 'set OUTPOST_ECS_CLUSTER to an existing cluster (name or ARN) in the Lambda function\'s region');
  }
  if (/override for container named/i.test(text) || /container.*not.*in the task ?definition/i.test(text)) {
    return setting('container_not_found', `task definition ${config.taskDefinition} has no container named ${config.containerName}`, 'set OUTPOST_CONTAINER_NAME to the name of the agent\'s container in the task definition');
  }
  if (/subnet/i.test(text) || /security ?group/i.test(text) || /vpc/i.test(text)) {
    return setting('network_configuration_invalid', `ECS refused the task's network configuration (subnets ${config.subnets.join(', ')}; security groups ${config.securityGroups.join(', ') || 'the VPC default'})`, 'check that OUTPOST_SUBNETS and OUTPOST_SECURITY_GROUPS name existing subnets and security groups of one VPC in this region, with a route to the internet (public IP or NAT gateway)');
  }
  if (/task ?definition/i.test(text) || aws.name === 'PlatformTaskDefinitionIncompatibilityException') {
    return setting('task_definition_unusable', `task definition ${config.taskDefinition} cannot be run (missing, inactive, or not Fargate-compatible)`, 'set OUTPOST_TASK_DEFINITION to an ACTIVE Fargate task definition (family, family:revision or ARN) in this region');
  }
  if (aws.name === 'ConflictException') {
    return new LaunchError('run_task_conflict', 'ECS saw this delivery\'s client token with other parameters; the next attempt finds the task started for it', { status: 503, awsError });
  }
  const passing =
    aws.name === 'ServerException' || aws.name === 'LimitExceededException' || /throttl|rate exceeded|too many requests/i.test(`${aws.name} ${text}`) || aws.status === undefined || aws.status >= 500 || aws.status === 429;
  if (passing) return new LaunchError('ecs_unavailable', `${action} failed for a reason that may pass`, { status: 503, awsError });
  return new LaunchError('ecs_refused', `${action} was refused: ${text}`, { status: 500, fix: 'see aws_error for what ECS objected to', awsError });
}

/** RunTask answered, but started nothing: its failures say why. */
export function explainFailures(failures: Failure[], config: ReceiverConfig): LaunchError {
  const summary = failures.map((failure) => [failure.reason, failure.detail].filter(Boolean).join(' ')).join('; ') || 'no task and no failure in the answer';
  const reasons = failures.map((failure) => failure.reason ?? '');
  if (reasons.some((reason) => /^RESOURCE:|^AGENT$|capacity is unavailable/i.test(reason))) {
    return new LaunchError('capacity_unavailable', `Fargate has no capacity for the task now (${summary})`, { status: 503, fix: 'nothing: the control plane retries; if it persists, add subnets in other availability zones', awsError: summary });
  }
  if (reasons.some((reason) => reason === 'MISSING')) {
    return new LaunchError('cluster_not_found', `ECS cluster ${config.cluster} or a resource it needs is missing (${summary})`, { status: 500, fix: 'check OUTPOST_ECS_CLUSTER', awsError: summary });
  }
  return new LaunchError('run_task_failed', `RunTask started no task: ${summary}`, { status: 500, fix: 'see aws_error for ECS\'s reason', awsError: summary });
}

function familyOf(taskDefinition: string): string {
  const name = taskDefinition.includes('/') ? taskDefinition.slice(taskDefinition.lastIndexOf('/') + 1) : taskDefinition;
  return name.replace(/:\d+$/, '');
}
