// Plans and applies as the API shows them (TFE: plans, applies), for the
// routes that read them and for runs that include them (`include=plan`).
// Their log-read-url is pre-signed: TFE's clients read it without a token.
import type { Phase } from '../../protocol/api-resources.ts';
import type { JobKind } from '../../protocol/statuses.ts';
import type { ServerContext } from '../context.ts';
import { relation } from '../http/json-api.ts';
import { applyIdOf, planIdOf } from '../ids.ts';
import type { JobRow } from '../jobs/repo.ts';
import { phaseStatus } from '../runs/lifecycle.ts';
import type { RunRow } from '../runs/repo.ts';

export const phasePaths = { plan: 'plans', apply: 'applies' } as const;

/** What a pre-signed log URL names: one phase's log, for GET. */
export const logObject = (kind: JobKind, phaseId: string) => `${phasePaths[kind]}/${phaseId}/logs`;

export function presentPhase(ctx: ServerContext, run: RunRow, job: JobRow | undefined, kind: JobKind): Phase {
  const id = kind === 'plan' ? planIdOf(run.id) : applyIdOf(run.id);
  const status = phaseStatus(run.status, kind, job?.status);
  return {
    id,
    type: phasePaths[kind],
    attributes: {
      status,
      'has-changes': kind === 'plan' && run.has_changes !== null ? run.has_changes === 1 : null,
      'resource-additions': run.resource_additions,
      'resource-changes': run.resource_changes,
      'resource-destructions': run.resource_destructions,
      'resource-imports': 0,
      'log-read-url': `${ctx.publicUrl}${ctx.signer.sign('GET', logObject(kind, id), ctx.now() + ctx.config.signedUrlTtl)}`,
      'status-timestamps': {},
    },
    relationships: { run: relation('runs', run.id) },
  };
}
