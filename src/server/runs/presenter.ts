// Runs as the API shows them (TFE: runs), with what TFE's clients read to
// decide what to do next: `actions` (may it be confirmed, discarded,
// canceled) and `permissions` (API tokens act for their whole organization,
// so every permission is theirs), the plan options, where it came from, and
// the relationships go-tfe follows (`include=` embeds them).
import type { Run } from '../../protocol/api-resources.ts';
import { isErrorCode } from '../../protocol/errors.ts';
import { ingressOf } from '../configuration-versions/service.ts';
import type { ServerContext } from '../context.ts';
import { iso, relation } from '../http/json-api.ts';
import { applyIdOf, planIdOf } from '../ids.ts';
import { cancelableStatuses, confirmableStatuses, discardableStatuses } from './lifecycle.ts';
import { planOptionsOf } from './options.ts';
import type { RunRow } from './repo.ts';

const runPermissions = {
  'can-apply': true,
  'can-cancel': true,
  'can-discard': true,
  'can-force-execute': true,
  'can-force-cancel': true,
  'can-override-policy-check': false,
};

/** Runs as the API shows them, each with the commit it is of (for runs from version control). */
export async function presentRuns(ctx: ServerContext, rows: RunRow[]): Promise<Run[]> {
  const commits = await ingressOf(ctx, rows.map((row) => row.configuration_version_id));
  return rows.map((row) => {
    const run = presentRun(row);
    const ingress = commits.get(row.configuration_version_id) ?? null;
    // Runs of commits stored before runs kept their source say so by their commit.
    const source = ingress && row.source === 'tfe-api' ? 'tfe-configuration-version' : row.source;
    return { ...run, attributes: { ...run.attributes, source, 'ingress-attributes': ingress } };
  });
}

function presentRun(row: RunRow): Run {
  const options = planOptionsOf(row.plan_options);
  const timestamps = JSON.parse(row.status_timestamps) as Record<string, string>;
  return {
    id: row.id,
    type: 'runs',
    attributes: {
      status: row.status,
      message: row.message,
      'is-destroy': row.is_destroy === 1,
      'plan-only': row.plan_only === 1,
      'auto-apply': row.auto_apply === 1,
      refresh: options.refresh,
      'refresh-only': options.refresh_only,
      'target-addrs': options.targets.length > 0 ? options.targets : null,
      'replace-addrs': options.replace.length > 0 ? options.replace : null,
      'has-changes': row.has_changes === null ? null : row.has_changes === 1,
      'resource-additions': row.resource_additions,
      'resource-changes': row.resource_changes,
      'resource-destructions': row.resource_destructions,
      // Codes are written from the catalogue; one this server does not know (written by a newer replica) shows as internal.
      'error-code': row.error_code === null ? null : isErrorCode(row.error_code) ? row.error_code : 'internal',
      'error-message': row.error_message,
      'created-at': iso(row.created_at),
      'status-timestamps': timestamps,
      'position-in-queue': 0,
      'allow-empty-apply': true,
      actions: {
        'is-cancelable': cancelableStatuses.includes(row.status),
        'is-confirmable': confirmableStatuses.includes(row.status),
        'is-discardable': discardableStatuses.includes(row.status),
        'is-force-cancelable': cancelableStatuses.includes(row.status),
      },
      permissions: runPermissions,
    },
    relationships: {
      workspace: relation('workspaces', row.workspace_id),
      'configuration-version': relation('configuration-versions', row.configuration_version_id),
      plan: relation('plans', planIdOf(row.id)),
      apply: relation('applies', applyIdOf(row.id)),
      'cost-estimate': { data: null },
      'policy-checks': { data: [] },
      'task-stages': { data: [] },
      'run-events': { data: Object.keys(timestamps).map((key) => ({ type: 'run-events', id: runEventId(row.id, key) })) },
    },
  };
}

/** A run event is a status the run entered: its id names the run and the status. */
export const runEventId = (runId: string, timestampKey: string) => `re-${runId}-${timestampKey.replace(/-at$/, '')}`;

/** A run's events (TFE: run-events), oldest first: the statuses it entered, with when. */
export function presentRunEvents(row: RunRow) {
  const timestamps = Object.entries(JSON.parse(row.status_timestamps) as Record<string, string>).sort(([, a], [, b]) => a.localeCompare(b));
  return timestamps.map(([key, at]) => {
    const status = key.replace(/-at$/, '');
    return {
      id: runEventId(row.id, key),
      type: 'run-events',
      attributes: { action: status, description: `the run became ${status.replaceAll('-', ' ')}`, 'created-at': at },
      relationships: { target: relation('runs', row.id) },
    };
  });
}
