// How `outpost` ends: the exit code for every outcome, and the one-line
// message printed for an error. Scripts rely on these codes (docs/cli.md), so
// they are part of the CLI's interface and never change meaning.
import { CommanderError } from '@commander-js/extra-typings';
import { ConfigError } from '../config/settings.ts';
import { ApiError, ServerUnreachableError } from './api-error.ts';

export const exitCodes = {
  success: 0,
  /** The run or operation ended unsuccessfully (errored, canceled, discarded). */
  failed: 1,
  /** Bad flags, arguments or settings. */
  usage: 2,
  /** The API refused the request (not found, validation, conflict…), or no server answered. */
  api: 3,
  /** The token was missing from the server's point of view, invalid, revoked or not allowed (401/403). */
  auth: 4,
  /** Interrupted twice with Ctrl-C (128 + SIGINT), the shell convention. */
  interrupted: 130,
} as const;

/** A mistake in how the CLI was called, caught by us rather than by commander. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? exitCodes.success : exitCodes.usage;
  if (error instanceof UsageError || error instanceof ConfigError) return exitCodes.usage;
  if (error instanceof ApiError) return error.isAuthFailure ? exitCodes.auth : exitCodes.api;
  if (error instanceof ServerUnreachableError) return exitCodes.api;
  return exitCodes.failed;
}

/**
 * `Error: <detail> [<code>]`, with every secret replaced by a placeholder:
 * a server or a proxy may echo a request back, and the token must never end
 * up in a terminal scrollback or a CI log.
 */
export function formatError(error: unknown, secrets: readonly string[] = []): string {
  let text: string;
  if (error instanceof ApiError) text = `Error: ${error.detail} [${error.code}]`;
  else if (error instanceof Error) text = `Error: ${error.message}`;
  else text = `Error: ${String(error)}`;
  for (const secret of secrets) {
    if (secret.length >= 4) text = text.split(secret).join('<redacted>');
  }
  return text;
}
