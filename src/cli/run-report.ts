// What the CLI says about a run once it has settled: a one-line outcome, the
// exit code it implies, and the root module outputs of the state it left;
// and, for a run version control started, the commit it is of.
import { successfulRunStatuses } from '../protocol/statuses.ts';
import type { OutpostApi } from './api-client.ts';
import type { IngressAttributes, Run, StateOutput } from './api-resources.ts';
import { exitCodes } from './exit-codes.ts';

/** 0 for a run that ended well or waits for confirmation; 1 for errored, canceled, discarded. */
export function exitCodeForRun(run: Run): number {
  const status = run.attributes.status;
  return successfulRunStatuses.includes(status) || status === 'planned' ? exitCodes.success : exitCodes.failed;
}

interface ChangeCounts {
  readonly add: number;
  readonly change: number;
  readonly destroy: number;
}

// The counts are null until a plan has finished.
function changeCounts(run: Run): ChangeCounts {
  const a = run.attributes;
  return { add: a['resource-additions'] ?? 0, change: a['resource-changes'] ?? 0, destroy: a['resource-destructions'] ?? 0 };
}

/** `2 to add, 0 to change, 1 to destroy`, the engines' own wording. */
export function describeChanges(run: Run): string {
  const c = changeCounts(run);
  return `${c.add} to add, ${c.change} to change, ${c.destroy} to destroy`;
}

/** `+2 ~0 -1` for tables; `-` before the plan has finished. */
export function summarizeChanges(run: Run): string {
  if (run.attributes['has-changes'] === null && run.attributes['resource-additions'] === null) return '-';
  const c = changeCounts(run);
  if (c.add + c.change + c.destroy === 0) return 'none';
  return `+${c.add} ~${c.change} -${c.destroy}`;
}

export function describeRunOutcome(run: Run): string {
  const a = run.attributes;
  const id = run.id;
  switch (a.status) {
    case 'applied': {
      const verb = a['is-destroy'] ? 'destroyed' : 'applied';
      const c = changeCounts(run);
      const counts = `${c.add} added, ${c.change} changed, ${c.destroy} destroyed`;
      return `Run ${id} ${verb}: ${counts}.`;
    }
    case 'planned_and_finished':
      if (a['plan-only']) return `Run ${id} finished (plan only): ${describeChanges(run)}.`;
      return `Run ${id} finished: no changes.`;
    case 'planned':
      return `Run ${id} is planned (${describeChanges(run)}) and waits for confirmation.`;
    case 'errored': {
      const code = a['error-code'] ? ` [${a['error-code']}]` : '';
      return `Run ${id} errored${a['error-message'] ? `: ${a['error-message']}` : '.'}${code}`;
    }
    case 'canceled':
    case 'force_canceled':
      return `Run ${id} was canceled.`;
    case 'discarded':
      return `Run ${id} was discarded.`;
    default:
      return `Run ${id} is ${a.status}.`;
  }
}

/**
 * `0123456789ab (main) by alice: Add the NAT gateway`, or `(PR #42)`, `(tag
 * v1.2.0)`: the commit of a run from version control in one line; undefined
 * for an uploaded configuration.
 */
export function describeCommit(ingress: IngressAttributes | null | undefined): string | undefined {
  if (!ingress) return undefined;
  const where = ingress['is-pull-request'] && ingress['pull-request-number'] !== null
    ? `PR #${ingress['pull-request-number']}`
    : ingress.tag
      ? `tag ${ingress.tag}`
      : ingress.branch;
  const firstLine = ingress['commit-message'].split('\n')[0]?.trim() ?? '';
  return [
    ingress['commit-sha'].slice(0, 12),
    where ? ` (${where})` : '',
    ingress['commit-author'] ? ` by ${ingress['commit-author']}` : '',
    firstLine ? `: ${firstLine}` : '',
  ].join('');
}

/** The commands that settle a run stopped at `planned`, for non-interactive sessions. */
export function confirmationHint(runId: string): string[] {
  return ['To apply these changes:', `  outpost run apply ${runId}`, 'To discard them:', `  outpost run discard ${runId}`];
}

/** Lines in the engines' `name = value` style; sensitive values stay hidden. */
export function formatStateOutputs(outputs: readonly StateOutput[]): string[] {
  return [...outputs]
    .sort((x, y) => x.attributes.name.localeCompare(y.attributes.name))
    .map((output) => `${output.attributes.name} = ${formatOutputValue(output)}`);
}

function formatOutputValue(output: StateOutput): string {
  if (output.attributes.sensitive) return '<sensitive>';
  const value = output.attributes.value;
  if (value === null || value === undefined) return 'null';
  return typeof value === 'object' ? JSON.stringify(value, null, 2) : JSON.stringify(value);
}

/** The outputs of a workspace's current state: empty when it has no state or no outputs. */
export async function fetchCurrentOutputs(api: OutpostApi, workspaceId: string): Promise<StateOutput[]> {
  const current = await api.getCurrentStateVersion(workspaceId);
  return current === undefined ? [] : api.getStateOutputs(current.id);
}
