// The handler's log: one JSON object per line, written to stdout directly.
// Lambda's console.* prefixes each line with a timestamp and request id,
// which would stop CloudWatch Logs Insights from reading the fields.
// Callers pass what an operator needs to act; never a secret or a body.
export type LogFields = Record<string, string | number | boolean | readonly string[] | undefined>;

export function logLine(level: 'info' | 'warn' | 'error', event: string, fields: LogFields = {}): void {
  process.stdout.write(`${JSON.stringify({ ...fields, level, event, time: new Date().toISOString() })}\n`);
}
