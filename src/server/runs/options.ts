// A run's engine options (TFE's run attributes: refresh, refresh-only,
// targets, replace, and run variables), kept with the run as JSON and handed
// to its jobs. Run variables may be secrets (the `tofu` CLI sends every -var
// of a plan), so they are sealed at rest like sensitive workspace variables.
import { planOptions, type JobVariable, type PlanOptions } from '../../protocol/agent-api.ts';
import type { ServerContext } from '../context.ts';

export interface RunOptions extends PlanOptions {
  /** Values for this run, each HCL, overriding the workspace's terraform variables of the same key. */
  variables: { key: string; value: string }[];
}

interface StoredOptions extends PlanOptions {
  /** Sealed JSON of the run variables. */
  sealed_variables?: string;
}

const defaults: RunOptions = { refresh: true, refresh_only: false, targets: [], replace: [], variables: [] };

/** The JSON a run keeps, or null when the run asks for nothing beyond a full plan. */
export function storedRunOptions(ctx: ServerContext, options: Partial<RunOptions>): string | null {
  const merged = { ...defaults, ...options };
  const { variables, ...plan } = merged;
  const isDefault = plan.refresh && !plan.refresh_only && plan.targets.length === 0 && plan.replace.length === 0 && variables.length === 0;
  if (isDefault) return null;
  const stored: StoredOptions = { ...plan, ...(variables.length > 0 ? { sealed_variables: ctx.sealer.seal(JSON.stringify(variables)) } : {}) };
  return JSON.stringify(stored);
}

/** A run's plan options as its API resource shows them (never the variables' values). */
export function planOptionsOf(stored: string | null): PlanOptions {
  return planOptions.parse(stored === null ? {} : (JSON.parse(stored) as StoredOptions));
}

/** What a job is told: the plan options, and the run variables laid over the workspace's. */
export function jobOptionsOf(ctx: ServerContext, stored: string | null, workspaceVariables: JobVariable[]): { plan_options?: PlanOptions; variables: JobVariable[] } {
  if (stored === null) return { variables: workspaceVariables };
  const parsed = JSON.parse(stored) as StoredOptions;
  const runVariables = parsed.sealed_variables ? (JSON.parse(ctx.sealer.open(parsed.sealed_variables)) as RunOptions['variables']) : [];
  const overridden = new Set(runVariables.map((variable) => variable.key));
  const variables = [
    ...workspaceVariables.filter((variable) => variable.category !== 'terraform' || !overridden.has(variable.key)),
    // Sensitive: a value given on the command line may be a secret, and the job masks sensitive values in its log.
    ...runVariables.map((variable): JobVariable => ({ key: variable.key, value: variable.value, category: 'terraform', hcl: true, sensitive: true })),
  ];
  return { plan_options: planOptions.parse(parsed), variables };
}
