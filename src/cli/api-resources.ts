// The resources of the Outpost API v2 as the CLI sees them. The API follows
// TFE API v2 conventions (JSON:API documents, dasherized attribute names, TFE
// type names), so attribute keys are kept exactly as they travel: `--json`
// prints these objects unchanged, and scripts written for the API read the
// same names. docs/api.md documents every field.
import type { AgentStatus, Engine, RunStatus } from '../protocol/statuses.ts';

export interface ResourceIdentifier {
  readonly type: string;
  readonly id: string;
}

export interface Relationship {
  readonly data: ResourceIdentifier | readonly ResourceIdentifier[] | null;
}

export interface Resource<Type extends string, Attributes> {
  readonly id: string;
  readonly type: Type;
  readonly attributes: Attributes;
  readonly relationships?: Readonly<Record<string, Relationship>>;
  readonly links?: Readonly<Record<string, string>>;
}

/** The id a to-one relationship points at, if the server included it. */
export function relatedId(resource: Resource<string, unknown>, name: string): string | undefined {
  const data = resource.relationships?.[name]?.data;
  if (data === null || data === undefined || Array.isArray(data)) return undefined;
  return (data as ResourceIdentifier).id;
}

export interface PoolAttributes {
  readonly name: string;
  readonly 'created-at': string;
  readonly 'agent-count': number;
}
export type Pool = Resource<'agent-pools', PoolAttributes>;

export interface PoolTokenAttributes {
  /** The secret: present only in the response that created the token. */
  readonly token?: string;
  readonly description: string | null;
  readonly 'created-at': string;
  readonly 'last-used-at': string | null;
  readonly 'revoked-at': string | null;
}
export type PoolToken = Resource<'authentication-tokens', PoolTokenAttributes>;

export interface AgentAttributes {
  readonly name: string;
  readonly status: AgentStatus;
  readonly version: string;
  readonly driver: string;
  readonly concurrency: number;
  readonly 'last-ping-at': string | null;
  readonly 'running-jobs': number;
}
export type Agent = Resource<'agents', AgentAttributes>;

export interface WorkspaceAttributes {
  readonly name: string;
  readonly 'auto-apply': boolean;
  readonly 'working-directory': string;
  readonly engine: Engine;
  /** The engine version (TFE's name for it, whichever engine is used). */
  readonly 'terraform-version': string;
  readonly 'execution-mode': 'agent';
  readonly locked: boolean;
  readonly 'created-at': string;
}
export type Workspace = Resource<'workspaces', WorkspaceAttributes>;

/** What may be set when creating or updating a workspace; unset keys keep the server's value. */
export interface WorkspaceInput {
  readonly name?: string;
  readonly 'auto-apply'?: boolean;
  readonly 'working-directory'?: string;
  readonly engine?: Engine;
  readonly 'terraform-version'?: string;
  readonly 'agent-pool-id'?: string;
}

export const variableCategories = ['terraform', 'env'] as const;
export type VariableCategory = (typeof variableCategories)[number];

export interface VariableAttributes {
  readonly key: string;
  /** null when the variable is sensitive: sensitive values are write-only. */
  readonly value: string | null;
  readonly category: VariableCategory;
  readonly hcl: boolean;
  readonly sensitive: boolean;
  readonly description: string | null;
}
export type Variable = Resource<'vars', VariableAttributes>;

export interface VariableInput {
  readonly key?: string;
  readonly value?: string;
  readonly category?: VariableCategory;
  readonly hcl?: boolean;
  readonly sensitive?: boolean;
  readonly description?: string;
}

export interface ConfigurationVersionAttributes {
  readonly status: 'pending' | 'uploaded' | 'errored';
  /** Absolute URL to PUT the .tar.gz to; present while the status is pending. */
  readonly 'upload-url'?: string | null;
  readonly 'error-message'?: string | null;
}
export type ConfigurationVersion = Resource<'configuration-versions', ConfigurationVersionAttributes>;

export interface RunAttributes {
  readonly status: RunStatus;
  readonly message: string | null;
  readonly 'is-destroy': boolean;
  readonly 'plan-only': boolean;
  readonly 'auto-apply': boolean;
  /** null until the plan has finished, like the counts below. */
  readonly 'has-changes': boolean | null;
  readonly 'resource-additions': number | null;
  readonly 'resource-changes': number | null;
  readonly 'resource-destructions': number | null;
  /** A code from src/protocol/errors.ts when the run errored (e.g. engine_failed, agent_lost). */
  readonly 'error-code'?: string | null;
  readonly 'error-message': string | null;
  readonly 'created-at': string;
  readonly 'status-timestamps': Readonly<Record<string, string>>;
}
export type Run = Resource<'runs', RunAttributes>;

export interface RunInput {
  readonly workspaceId: string;
  readonly configurationVersionId: string;
  readonly message?: string;
  readonly isDestroy?: boolean;
  readonly planOnly?: boolean;
  /** Unset: the workspace's auto-apply setting decides. */
  readonly autoApply?: boolean;
}

export const phaseStatuses = ['pending', 'queued', 'running', 'finished', 'errored', 'canceled', 'unreachable'] as const;
export type PhaseStatus = (typeof phaseStatuses)[number];

/** A phase has ended: its log will not grow any more. */
export function isPhaseOver(status: PhaseStatus): boolean {
  return status === 'finished' || status === 'errored' || status === 'canceled' || status === 'unreachable';
}

/** The plan or the apply of a run: they share their shape, as in TFE. */
export interface PhaseAttributes {
  readonly status: PhaseStatus;
  readonly 'has-changes'?: boolean;
  readonly 'resource-additions': number;
  readonly 'resource-changes': number;
  readonly 'resource-destructions': number;
  readonly 'log-read-url'?: string;
}
export type PhaseKind = 'plan' | 'apply';
export type Phase = Resource<'plans' | 'applies', PhaseAttributes>;

export interface StateVersionAttributes {
  readonly serial: number;
  readonly lineage: string;
  readonly size: number;
  readonly 'created-at': string;
  readonly 'hosted-state-download-url': string;
}
export type StateVersion = Resource<'state-versions', StateVersionAttributes>;

export interface StateOutputAttributes {
  readonly name: string;
  /** null when the output is sensitive. */
  readonly value: unknown;
  readonly sensitive: boolean;
  readonly type: unknown;
}
export type StateOutput = Resource<'state-version-outputs', StateOutputAttributes>;
