// Checks on what the engine and the server printed.
import assert from 'node:assert/strict';
import type { ServerHandle } from './cluster.ts';

/**
 * The `name = "value"` lines of the Outputs section the engine prints at the
 * end of an apply (string outputs only; `<sensitive>` ones are left out).
 */
export function outputsFromApplyLog(log: string): Record<string, string> {
  const start = log.lastIndexOf('\nOutputs:\n');
  assert.ok(start >= 0, `the apply log has no Outputs section:\n${log}`);
  const outputs: Record<string, string> = {};
  for (const line of log.slice(start).split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_-]*) = "((?:[^"\\]|\\.)*)"$/.exec(line);
    if (match) outputs[match[1] as string] = JSON.parse(`"${match[2] as string}"`) as string;
  }
  return outputs;
}

/**
 * Fails if the server re-queued or gave up a job because its lease expired
 * (since `sinceOffset`, a length of server.output() taken earlier): in tests
 * where no agent dies, that means a job the server handed out never reached
 * an agent.
 */
export function assertNoJobLost(server: ServerHandle, sinceOffset = 0): void {
  const lost = server
    .output()
    .slice(sinceOffset)
    .split('\n')
    .filter((line) => line.includes('job lost its agent'));
  assert.deepEqual(lost, [], 'every job the server handed out reached an agent');
}
