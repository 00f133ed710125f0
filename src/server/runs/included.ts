// `include=` for runs: go-tfe asks for related resources to be embedded
// (`include=workspace,plan`) and reads them from the document's `included`.
// Each related resource appears once, however many runs point at it.
import { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import type { Resource } from '../../protocol/api-resources.ts';
import { findConfigurationVersions } from '../configuration-versions/repo.ts';
import { present as presentConfigurationVersion } from '../configuration-versions/presenter.ts';
import type { ServerContext } from '../context.ts';
import { findPhaseJob } from '../jobs/repo.ts';
import { presentPhase } from '../logs/presenter.ts';
import { present as presentWorkspace } from '../workspaces/presenter.ts';
import { findWorkspaceById, viewOf } from '../workspaces/service.ts';
import type { RunRow } from './repo.ts';

export const includable = ['workspace', 'plan', 'apply', 'configuration_version'] as const;
type Includable = (typeof includable)[number];
/**
 * What else go-tfe may ask to include. These relationships are empty here
 * (no cost estimates, task stages or user accounts), so there is nothing to
 * embed; refusing them would fail the tofu CLI, which asks for task stages.
 */
const emptyIncludes = ['created_by', 'cost_estimate', 'task_stages', 'configuration_version.ingress_attributes', 'workspace.organization', 'run_events', 'policy_checks'];

export const includeQuery = z.looseObject({ include: z.string().max(512).optional() });

/**
 * The relationships `include` names; an unknown one is 400 invalid_request
 * naming the include parameter, as TFE answers (go-tfe looks for the words).
 */
export function parseInclude(raw: string | undefined, known: readonly string[]): string[] {
  const items = (raw ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');
  const unknown = items.filter((item) => !known.includes(item));
  if (unknown.length > 0) throw new OutpostError('invalid_request', `the include parameter names ${unknown.join(', ')}, which this resource cannot include; it may name ${known.join(', ')}`);
  return items;
}

export const runIncludes = [...includable, ...emptyIncludes];

/** The resources `include` names for these runs, each once. */
export async function includedOf(ctx: ServerContext, rows: readonly RunRow[], include: readonly string[] | undefined): Promise<Resource<string, unknown>[]> {
  const wanted = new Set((include ?? []) as Includable[]);
  const out = new Map<string, Resource<string, unknown>>();
  const add = (resource: Resource<string, unknown>) => out.set(`${resource.type}/${resource.id}`, resource);
  if (wanted.has('workspace')) {
    for (const id of new Set(rows.map((row) => row.workspace_id))) {
      const row = await findWorkspaceById(ctx, id);
      if (row) add(await presentWorkspace(ctx, await viewOf(ctx, row)));
    }
  }
  for (const kind of ['plan', 'apply'] as const) {
    if (!wanted.has(kind)) continue;
    for (const run of rows) add(presentPhase(ctx, run, await findPhaseJob(ctx.db, run.id, kind), kind));
  }
  if (wanted.has('configuration_version')) {
    for (const cv of await findConfigurationVersions(ctx.db, [...new Set(rows.map((row) => row.configuration_version_id))])) add(presentConfigurationVersion(ctx, cv));
  }
  return [...out.values()];
}
