// The API v2 resources as the CLI uses them: the resource and request
// schemas are the protocol's (src/protocol/api-resources.ts and
// api-inputs.ts, shared with the server and the tests); only the CLI's own
// shape of a run request is described here.

export {
  isPhaseOver,
  relatedId,
  variableCategories,
  type Agent,
  type ConfigurationVersion,
  type Phase,
  type PhaseKind,
  type PhaseStatus,
  type Pool,
  type PoolToken,
  type PoolWebhook,
  type WebhookDelivery,
  type Resource,
  type Run,
  type StateOutput,
  type StateVersion,
  type Variable,
  type VariableCategory,
  type Workspace,
} from '../protocol/api-resources.ts';

/** What the CLI may set on a workspace or a variable: the protocol's request attributes. */
export type { PoolWebhookInput, VariableInput, WorkspaceInput } from '../protocol/api-inputs.ts';

export interface RunInput {
  readonly workspaceId: string;
  readonly configurationVersionId: string;
  readonly message?: string;
  readonly isDestroy?: boolean;
  readonly planOnly?: boolean;
  /** Unset: the workspace's auto-apply setting decides. */
  readonly autoApply?: boolean;
}
