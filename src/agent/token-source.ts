// The pool token given as an AWS Secrets Manager ARN (OUTPOST_AGENT_TOKEN=
// arn:aws:secretsmanager:…), as the Scalr agent's serverless task reads it:
// the secret's value is fetched once at start with the AWS SDK, from the
// ARN's region, with the credentials the environment provides (a task role
// on ECS). AWS_ENDPOINT_URL points the SDK elsewhere (an emulator in tests).
// The SDK loads only when a token is given this way.
import { serverUrlOfPoolToken } from '../protocol/pool-token.ts';
import type { AgentConfig } from './config.ts';

const secretArn = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;

/** Why the token could not be read, and whether a setting is to blame (exit 2) or the moment (exit 1). */
export class TokenSourceError extends Error {
  readonly configuration: boolean;
  constructor(message: string, configuration: boolean) {
    super(message);
    this.name = 'TokenSourceError';
    this.configuration = configuration;
  }
}

export function isSecretsManagerArn(value: string | undefined): value is string {
  return value !== undefined && secretArn.test(value);
}

/** The config with the pool token read from Secrets Manager when it names a secret; the URL then follows the token, unless set. */
export async function resolvePoolToken(config: AgentConfig, urlSet: boolean): Promise<AgentConfig> {
  const arn = config.token;
  if (!isSecretsManagerArn(arn)) return config;
  const region = secretArn.exec(arn)![1]!;
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({ region });
  let value: string | undefined;
  try {
    value = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
  } catch (error) {
    const name = (error as Error).name;
    const configuration = ['ResourceNotFoundException', 'AccessDeniedException', 'AccessDenied', 'ValidationException', 'InvalidRequestException', 'DecryptionFailure', 'UnrecognizedClientException'].includes(name);
    const hint = name === 'AccessDeniedException' || name === 'AccessDenied' ? ' (the task role needs secretsmanager:GetSecretValue on it, and kms:Decrypt for a customer key)' : '';
    throw new TokenSourceError(`OUTPOST_AGENT_TOKEN names ${arn}, which could not be read: ${name}: ${(error as Error).message}${hint}`, configuration);
  } finally {
    client.destroy();
  }
  const token = value?.trim() ?? '';
  if (token === '' || /\s/.test(token)) throw new TokenSourceError(`OUTPOST_AGENT_TOKEN names ${arn}, whose value is not one pool token (opp_…): store the token alone as the secret's string`, true);
  return { ...config, token, url: urlSet ? config.url : (serverUrlOfPoolToken(token) ?? config.url) };
}
