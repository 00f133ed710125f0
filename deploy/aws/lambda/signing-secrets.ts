// The pool's webhook signing secret, read from Secrets Manager and kept per
// Lambda container for a minute: a delivery costs no Secrets Manager call
// in the common case, and a rotated secret is picked up within the minute
// (sooner: a signature that does not match forces a re-read, see handler.ts).
//
// The secret's string is either the signing secret alone, or JSON
// {"current": "…", "previous": "…"} while a rotation overlaps both.

/** Why the secret could not be used. `retry` separates a passing AWS problem from a setting to fix. */
export class SigningSecretError extends Error {
  readonly code: string;
  readonly fix: string | undefined;
  readonly retry: boolean;
  readonly awsError: string | undefined;
  constructor(code: string, message: string, options: { fix?: string; retry: boolean; awsError?: string }) {
    super(message);
    this.name = 'SigningSecretError';
    this.code = code;
    this.fix = options.fix;
    this.retry = options.retry;
    this.awsError = options.awsError;
  }
}

/** The secrets a signature may match, current first. Throws when the value has neither form. */
export function parseSigningSecret(value: string, arn: string): string[] {
  const text = value.trim();
  let parsed: unknown;
  if (text.startsWith('{')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // A plain secret may begin with a brace; it is used as it is.
    }
  }
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    const { current, previous } = parsed as Record<string, unknown>;
    if (typeof current !== 'string' || current.trim() === '') {
      throw new SigningSecretError('signing_secret_malformed', `the secret ${arn} is JSON without a "current" string`, {
        fix: 'store the signing secret alone, or JSON {"current": "<secret>", "previous": "<secret being rotated out>"}',
        retry: false,
      });
    }
    const secrets = [current.trim()];
    if (typeof previous === 'string' && previous.trim() !== '' && previous.trim() !== current.trim()) secrets.push(previous.trim());
    return secrets;
  }
  if (text === '') {
    throw new SigningSecretError('signing_secret_malformed', `the secret ${arn} is empty`, { fix: 'store the signing secret the control plane printed when the pool webhook was set', retry: false });
  }
  return [text];
}

const denied = new Set(['AccessDeniedException', 'AccessDenied', 'UnrecognizedClientException']);
const missing = new Set(['ResourceNotFoundException']);
const unusable = new Set(['DecryptionFailure', 'InvalidRequestException', 'InvalidParameterException', 'ValidationException']);

export function explainSecretError(error: unknown, arn: string): SigningSecretError {
  const name = (error as { name?: string }).name ?? 'Error';
  const message = (error as { message?: string }).message ?? String(error);
  const awsError = `${name}: ${message}`;
  if (denied.has(name)) {
    const kms = /kms/i.test(message) ? ' and kms:Decrypt on the secret\'s KMS key' : '';
    return new SigningSecretError('signing_secret_denied', `the signing secret ${arn} could not be read: access denied`, {
      fix: `give the Lambda function's role secretsmanager:GetSecretValue on ${arn}${kms}`,
      retry: false,
      awsError,
    });
  }
  if (missing.has(name)) {
    return new SigningSecretError('signing_secret_not_found', `the signing secret ${arn} does not exist (or is scheduled for deletion, or has no value yet)`, {
      fix: `set OUTPOST_SIGNING_SECRET_ARN to an existing secret holding the signing secret; the Lambda function's role needs secretsmanager:GetSecretValue on it`,
      retry: false,
      awsError,
    });
  }
  if (unusable.has(name)) {
    return new SigningSecretError('signing_secret_unusable', `the signing secret ${arn} could not be read`, {
      fix: 'check the secret in Secrets Manager (its KMS key, its current version)',
      retry: false,
      awsError,
    });
  }
  return new SigningSecretError('signing_secret_unavailable', `the signing secret ${arn} could not be read now`, { retry: true, awsError });
}

interface Cached {
  secrets: string[];
  readAt: number;
}

export class SigningSecretCache {
  readonly #read: (arn: string) => Promise<string | undefined>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Cached>();

  constructor(read: (arn: string) => Promise<string | undefined>, options: { ttlMs?: number; now?: () => number } = {}) {
    this.#read = read;
    this.#ttlMs = options.ttlMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Milliseconds since the secret was read, or undefined when it is not cached. */
  age(arn: string): number | undefined {
    const entry = this.#entries.get(arn);
    return entry === undefined ? undefined : this.#now() - entry.readAt;
  }

  async get(arn: string, options: { refresh?: boolean } = {}): Promise<string[]> {
    const entry = this.#entries.get(arn);
    if (entry !== undefined && !options.refresh && this.#now() - entry.readAt < this.#ttlMs) return entry.secrets;
    let value: string | undefined;
    try {
      value = await this.#read(arn);
    } catch (error) {
      throw explainSecretError(error, arn);
    }
    if (value === undefined) {
      throw new SigningSecretError('signing_secret_malformed', `the secret ${arn} has no string value (a binary secret?)`, { fix: 'store the signing secret as the secret\'s string', retry: false });
    }
    const secrets = parseSigningSecret(value, arn);
    this.#entries.set(arn, { secrets, readAt: this.#now() });
    return secrets;
  }
}
