// The one catalogue of error codes. Codes are stable API: clients and scripts
// match on them, so a code is never renamed or reused for another meaning.
// Every error leaving the server or the agent carries one of these.

export const errorCatalogue = {
  // authentication and authorization
  unauthorized: { status: 401, title: 'missing or malformed credentials' },
  token_invalid: { status: 401, title: 'the token is not valid' },
  token_revoked: { status: 401, title: 'the token has been revoked' },
  forbidden: { status: 403, title: 'the token may not access this resource' },
  // request shape
  not_found: { status: 404, title: 'no such resource' },
  route_not_found: { status: 404, title: 'no such endpoint' },
  invalid_request: { status: 400, title: 'the request is malformed' },
  validation_failed: { status: 422, title: 'the request failed validation' },
  payload_too_large: { status: 413, title: 'the request body is too large' },
  unsupported_media_type: { status: 415, title: 'unsupported content type' },
  conflict: { status: 409, title: 'the resource is in a state that does not allow this' },
  already_exists: { status: 409, title: 'a resource with this name already exists' },
  // agent protocol
  lease_stale: { status: 409, title: 'the lease is no longer current for this job' },
  log_offset_gap: { status: 409, title: 'log chunk does not continue the stored log' },
  log_too_large: { status: 413, title: 'the log has reached the size limit' },
  state_locked: { status: 423, title: 'the state is locked' },
  state_lock_mismatch: { status: 409, title: 'the lock id does not match the current lock' },
  state_serial_conflict: { status: 409, title: 'the state is older than the stored state' },
  // job operation (reported in run logs and job results)
  archive_invalid: { status: 422, title: 'the configuration archive cannot be read' },
  archive_path_traversal: { status: 422, title: 'an archive entry escapes the working directory' },
  archive_absolute_path: { status: 422, title: 'an archive entry has an absolute path' },
  archive_link_escape: { status: 422, title: 'an archive link points outside the working directory' },
  archive_unsupported_entry: { status: 422, title: 'an archive entry has an unsupported type' },
  archive_too_large: { status: 422, title: 'the archive expands beyond the size limit' },
  engine_unavailable: { status: 500, title: 'the engine binary could not be provided' },
  engine_build_failed: { status: 500, title: 'the engine could not be built from source' },
  engine_checksum_mismatch: { status: 500, title: 'the engine download does not match its checksum' },
  engine_failed: { status: 500, title: 'the engine exited with an error' },
  out_of_memory: { status: 500, title: 'the job exceeded its memory limit and was killed' },
  memory_limit: { status: 500, title: 'the job reached its memory soft limit and was interrupted' },
  sandbox_failed: { status: 500, title: 'the driver could not create or start the job\'s sandbox' },
  working_directory_missing: { status: 422, title: 'the workspace working directory is not in the configuration' },
  agent_lost: { status: 500, title: 'the agent running the job stopped reporting' },
  agent_stopped: { status: 500, title: 'the agent running the job was stopped before the job finished' },
  job_unclaimed: { status: 500, title: 'no agent claimed the job of a serverless pool in time' },
  // outpost launcher (a pool webhook's receiver)
  signature_invalid: { status: 401, title: 'the webhook delivery is unsigned, wrongly signed or too old' },
  launcher_at_capacity: { status: 503, title: 'the launcher runs as many agents as it may' },
  launch_failed: { status: 500, title: 'the launcher could not start an agent' },
  // version control
  signature_missing: { status: 401, title: 'the webhook delivery carries no signature or token' },
  vcs_fetch_failed: { status: 502, title: 'the commit could not be fetched from the repository' },
  vcs_api_failed: { status: 502, title: 'the version control provider refused or failed a request' },
  vcs_archive_too_large: { status: 422, title: 'the repository at this commit is larger than the upload limit' },
  // pre-signed URLs (what TFE clients follow without a token)
  url_signature_invalid: { status: 403, title: 'the URL is not signed for this object and method' },
  url_expired: { status: 403, title: 'the signed URL has expired' },
  // server side
  internal: { status: 500, title: 'internal error' },
  unavailable: { status: 503, title: 'the service is not ready' },
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

/** Every code, for wire schemas (`z.enum(errorCodes)`). */
export const errorCodes = Object.keys(errorCatalogue) as [ErrorCode, ...ErrorCode[]];

/** An error with a stable code; the only error type that crosses a boundary. */
export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? errorCatalogue[code].title);
    this.name = 'OutpostError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = details;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCatalogue, value);
}
