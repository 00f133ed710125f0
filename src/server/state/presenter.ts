// State versions and their outputs as the API shows them (TFE: state-versions,
// state-version-outputs), with the attributes TFE's clients read: go-tfe's
// StateVersion takes its download URL from `hosted-state-download-url` and
// its outputs from the `outputs` relationship; the `tofu` CLI downloads the
// state from that URL without a token, so it is pre-signed.
import type { StateOutput, StateVersion } from '../../protocol/api-resources.ts';
import type { ServerContext } from '../context.ts';
import { iso, relation } from '../http/json-api.ts';
import { parseInclude } from '../runs/included.ts';
import { presentRuns } from '../runs/presenter.ts';
import { findRunById } from '../runs/service.ts';
import type { OutputView } from './outputs.ts';
import { outputsOf } from './outputs.ts';
import type { StateVersionRow } from './repo.ts';
import { md5Of } from './service.ts';

/** The object a pre-signed download URL of a state version names. */
export const downloadObject = (id: string) => `state-versions/${id}/download`;

export async function presentStateVersion(ctx: ServerContext, row: StateVersionRow): Promise<StateVersion> {
  return {
    id: row.id,
    type: 'state-versions',
    attributes: {
      serial: row.serial,
      lineage: row.lineage,
      size: row.size,
      sha256: row.sha256,
      md5: await md5Of(ctx, row),
      // Stored whole when created: nothing is processed later (TFE fills some of these asynchronously).
      status: 'finalized',
      'resources-processed': true,
      'created-at': iso(row.created_at),
      'hosted-state-download-url': `${ctx.publicUrl}${ctx.signer.sign('GET', downloadObject(row.id), ctx.now() + ctx.config.signedUrlTtl)}`,
      // The JSON form of the state (`tofu show -json`) is not kept.
      'hosted-json-state-download-url': null,
    },
    relationships: {
      workspace: relation('workspaces', row.workspace_id),
      run: relation('runs', row.run_id),
      outputs: { data: outputsOf(row).map((output) => ({ id: output.id, type: 'state-version-outputs' })) },
    },
  };
}

/**
 * What `include=` may name on a state version (go-tfe's StateVersionIncludeOpt):
 * its outputs, which the `tofu` CLI and go-tfe read from `included`, and
 * its run. The others go-tfe knows (created_by, run.created_by,
 * run.configuration_version) are refused, as TFE refuses what it cannot include.
 */
const stateVersionIncludes = ['outputs', 'run'];

/** A state version as one document, with what `include` (the raw query value) asks to embed. */
export async function stateVersionDocument(ctx: ServerContext, row: StateVersionRow, rawInclude: string | undefined): Promise<{ data: StateVersion; included?: unknown[] }> {
  // Checked first: a refused include is refused whatever the state version holds.
  const include = parseInclude(rawInclude, stateVersionIncludes);
  const data = await presentStateVersion(ctx, row);
  const included: unknown[] = [];
  if (include.includes('outputs')) included.push(...outputsOf(row).map(presentOutput));
  if (include.includes('run') && row.run_id !== null) {
    const run = await findRunById(ctx, row.run_id);
    if (run) included.push(...(await presentRuns(ctx, [run])));
  }
  return included.length > 0 ? { data, included } : { data };
}

/** State versions one after the other: each may read its file once for its MD5. */
export async function presentStateVersions(ctx: ServerContext, rows: readonly StateVersionRow[]): Promise<StateVersion[]> {
  const presented: StateVersion[] = [];
  for (const row of rows) presented.push(await presentStateVersion(ctx, row));
  return presented;
}

export function presentOutput(output: OutputView): StateOutput {
  return {
    id: output.id,
    type: 'state-version-outputs',
    attributes: { name: output.name, sensitive: output.sensitive, type: output.type, value: output.value, 'detailed-type': output.detailedType },
  };
}
