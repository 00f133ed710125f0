// The handler's settings, from the environment the deploy/aws module gives
// the function. Read on every invocation (a few string splits) so that a
// changed setting never needs a cold start to apply.
export interface ReceiverConfig {
  signingSecretArn: string;
  cluster: string;
  taskDefinition: string;
  containerName: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: 'ENABLED' | 'DISABLED';
  /** Pool ids whose deliveries start tasks; undefined lets every pool's through. */
  allowedPools: ReadonlySet<string> | undefined;
}

export type ConfigResult = { ok: true; config: ReceiverConfig } | { ok: false; problems: string[] };

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function readConfig(env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name]?.trim() ?? '';
    if (value === '') problems.push(`${name} is not set`);
    return value;
  };
  const signingSecretArn = required('OUTPOST_SIGNING_SECRET_ARN');
  const cluster = required('OUTPOST_ECS_CLUSTER');
  const taskDefinition = required('OUTPOST_TASK_DEFINITION');
  const containerName = required('OUTPOST_CONTAINER_NAME');
  const subnets = list(env.OUTPOST_SUBNETS);
  if (subnets.length === 0) problems.push('OUTPOST_SUBNETS names no subnet (a comma-separated list of subnet ids)');
  const assign = (env.OUTPOST_ASSIGN_PUBLIC_IP ?? 'DISABLED').trim().toUpperCase();
  if (assign !== 'ENABLED' && assign !== 'DISABLED') problems.push(`OUTPOST_ASSIGN_PUBLIC_IP is ${JSON.stringify(env.OUTPOST_ASSIGN_PUBLIC_IP)}: use ENABLED or DISABLED`);
  const pools = list(env.OUTPOST_ALLOWED_POOLS);
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: {
      signingSecretArn,
      cluster,
      taskDefinition,
      containerName,
      subnets,
      // Empty: ECS gives the task the VPC's default security group.
      securityGroups: list(env.OUTPOST_SECURITY_GROUPS),
      assignPublicIp: assign as 'ENABLED' | 'DISABLED',
      allowedPools: pools.length > 0 ? new Set(pools) : undefined,
    },
  };
}
