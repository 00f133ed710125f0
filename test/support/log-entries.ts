// Reading the JSON logs of the server and agents (OUTPOST_LOG_FORMAT=json,
// which the test harness sets) for fault tests that assert on what a process
// did or answered: one object a line; lines that are not JSON (the harness's
// own headers) are skipped.

export interface LogEntry {
  readonly msg?: string;
  readonly [field: string]: unknown;
}

/** The JSON entries of a process's output (from `offset`, a length of it taken earlier). */
export function logEntries(output: string, offset = 0): LogEntry[] {
  return output
    .slice(offset)
    .split('\n')
    .flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        return [JSON.parse(line) as LogEntry];
      } catch {
        return [];
      }
    });
}

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

/** The requests a server logged with their statuses (only at OUTPOST_LOG_LEVEL=debug; app.ts). */
export function loggedRequests(serverOutput: string, offset = 0): LoggedRequest[] {
  return logEntries(serverOutput, offset).flatMap((entry) =>
    entry.msg === 'request' && typeof entry.path === 'string'
      ? [{ method: String(entry.method), path: entry.path, status: Number(entry.status) }]
      : [],
  );
}

/** An agent's entries with this message about this job. */
export function jobEntries(agentOutput: string, message: string, jobId: string): LogEntry[] {
  return logEntries(agentOutput).filter((entry) => entry.msg === message && entry.job === jobId);
}
