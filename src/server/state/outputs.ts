// A state version's root module outputs as TFE shows them (state-version-
// outputs). The `tofu` CLI's `output` command (cloud block) lists the
// workspace's current outputs, then reads each sensitive one by its id for
// the value the list leaves out; it decodes every value with `detailed-type`
// (the engine's type of the output, as the state file records it) and falls
// back to downloading the whole state when that is missing.
import { OutpostError } from '../../protocol/errors.ts';
import type { ServerContext } from '../context.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import type { WorkspaceRow } from '../workspaces/repo.ts';
import type { StateVersionRow } from './repo.ts';
import { findCurrentStateVersion, parseOutputs, requireStateVersion, stateDocumentOf, type StateOutput } from './service.ts';

export interface OutputView {
  id: string;
  name: string;
  sensitive: boolean;
  /** TFE's coarse type: string, number, boolean, array or object. */
  type: string;
  /** The engine's type (cty's JSON form: "string", ["list","string"], …); null when the state did not record it. */
  detailedType: unknown;
  /** null for a sensitive output, except when it is read alone (requireOutput). */
  value: unknown;
}

// An output's id is its state version's id and its name: state version ids
// are `sv-` and 16 letters or digits, so the split is never ambiguous.
const outputIdPattern = /^(sv-[A-Za-z0-9]{16})-(.+)$/;

export function outputId(stateVersionId: string, name: string): string {
  return `${stateVersionId}-${name}`;
}

/** TFE's `type`: the kind of JSON value the output is. */
function coarseType(detailedType: unknown, value: unknown): string {
  if (detailedType === 'string' || detailedType === 'number') return detailedType;
  if (detailedType === 'bool') return 'boolean';
  if (Array.isArray(detailedType)) {
    if (['list', 'set', 'tuple'].includes(detailedType[0] as string)) return 'array';
    if (['map', 'object'].includes(detailedType[0] as string)) return 'object';
  }
  // "dynamic", or no type recorded: what the value itself is.
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number' || typeof value === 'string') return typeof value;
  return 'object';
}

function viewOf(row: StateVersionRow, output: StateOutput): OutputView {
  return {
    id: outputId(row.id, output.name),
    name: output.name,
    sensitive: output.sensitive,
    type: coarseType(output.type, output.value),
    detailedType: output.type ?? null,
    value: output.sensitive ? null : output.value,
  };
}

/** The outputs of a state version the caller may see (requireStateVersion); sensitive values are null. */
export function outputsOf(row: StateVersionRow): OutputView[] {
  return parseOutputs(row).map((output) => viewOf(row, output));
}

/** The outputs of the current state of a workspace the caller may see; none when it has no state yet. */
export async function currentOutputs(ctx: ServerContext, workspace: WorkspaceRow): Promise<OutputView[]> {
  const current = await findCurrentStateVersion(ctx, workspace);
  return current ? outputsOf(current) : [];
}

/**
 * One output of a state version the caller may see, a sensitive one with its
 * value: the database never holds it, so it is read from the state file
 * (and must never be logged).
 */
export async function requireOutput(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<OutputView> {
  const [, stateVersionId, name] = outputIdPattern.exec(id) ?? [];
  const missing = () => new OutpostError('not_found', `state version output ${id} not found`);
  if (stateVersionId === undefined || name === undefined) throw missing();
  let row: StateVersionRow;
  try {
    row = await requireStateVersion(ctx, principal, stateVersionId);
  } catch (error) {
    // The output is what was asked for; its state version is a detail of its id.
    if (error instanceof OutpostError && error.code === 'not_found') throw missing();
    throw error;
  }
  const output = parseOutputs(row).find((candidate) => candidate.name === name);
  if (!output) throw missing();
  const view = viewOf(row, output);
  if (!output.sensitive) return view;
  const document = await stateDocumentOf(ctx, row);
  return { ...view, value: Object.hasOwn(document.outputs ?? {}, name) ? (document.outputs?.[name]?.value ?? null) : null };
}
