// The API v2 resources as the CLI uses them: the resource and request
// schemas are the protocol's (src/protocol/api-resources.ts and
// api-inputs.ts, shared with the server and the tests); only the CLI's own
// shape of a run request (and of a provider update) is described here.
import type { VcsProviderInput } from '../protocol/vcs-api.ts';

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
  type VcsDelivery,
  type VcsProvider,
  type VcsRepositoryCheck,
  type VcsTrigger,
  type Workspace,
} from '../protocol/api-resources.ts';

export type { PoolKind } from '../protocol/statuses.ts';

/** What the CLI may set on a workspace or a variable: the protocol's request attributes. */
export type { PoolWebhookInput, VariableInput, WorkspaceInput } from '../protocol/api-inputs.ts';
export type { IngressAttributes, VcsProviderInput, VcsProviderKind } from '../protocol/vcs-api.ts';

/** A provider's settings as an update sends them: any of them but the kind, which never changes. */
export type VcsProviderUpdate = Omit<Partial<VcsProviderInput>, 'kind'>;

export interface RunInput {
  readonly workspaceId: string;
  readonly configurationVersionId: string;
  readonly message?: string;
  readonly isDestroy?: boolean;
  readonly planOnly?: boolean;
  /** Unset: the workspace's auto-apply setting decides. */
  readonly autoApply?: boolean;
}
