// Row types of every table, as Kysely sees them. Times are epoch milliseconds
// and flags are 0/1 integers so that one repository code serves SQLite and
// PostgreSQL without per-dialect conversions.
//
// The schema is written twice: here, for the type checker, and in the
// migrations (migrations/), which create the tables. `schemaColumns` below
// ties the two together. It lists every column of every table with its SQL
// type and whether it may be NULL, and `satisfies SchemaColumns` makes the
// type checker hold it to the interfaces exactly: a column missing from it,
// one it has that an interface lacks, or a nullability or type family
// (text, number, bytes) that differs from the interface's fails
// `npm run typecheck`. schema.test.ts then creates a fresh database through
// the migrations, on SQLite and on PostgreSQL, and compares every table,
// column, SQL type and nullability with `schemaColumns`: a migration that
// adds, drops or changes a column the interfaces do not (or the reverse)
// fails that test. Types vanish at run time; this list is the part of them
// that a test can read.
import type { AgentStatus, Engine, ExecutionMode, JobKind, JobStatus, PoolKind, RunStatus } from '../../protocol/statuses.ts';
import { vcsSchemaColumns, type VcsTables } from './schema-vcs.ts';

export type Flag = 0 | 1;

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiTokensTable {
  id: string;
  organization_id: string;
  description: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AgentPoolsTable {
  id: string;
  organization_id: string;
  name: string;
  kind: PoolKind;
  created_at: number;
}

export interface PoolTokensTable {
  id: string;
  pool_id: string;
  description: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AgentsTable {
  id: string;
  pool_id: string;
  pool_token_id: string;
  name: string;
  version: string;
  driver: string;
  concurrency: number;
  single: Flag;
  status: AgentStatus;
  session_token_hash: string;
  registered_at: number;
  last_seen_at: number;
  deregistered_at: number | null;
}

export interface WorkspacesTable {
  id: string;
  organization_id: string;
  name: string;
  engine: Engine;
  engine_version: string;
  working_directory: string;
  pool_id: string | null;
  auto_apply: Flag;
  current_run_id: string | null;
  created_at: number;
  updated_at: number;
  /** `agent`: runs go to the workspace's pool; `local`: the CLI runs the engine, and only state and its lock live here. */
  execution_mode: ExecutionMode;
  description: string;
}

export interface WorkspaceTagsTable {
  workspace_id: string;
  tag: string;
}

export interface VariablesTable {
  id: string;
  workspace_id: string;
  key: string;
  value: string;
  category: 'terraform' | 'env';
  hcl: Flag;
  sensitive: Flag;
  description: string;
  created_at: number;
  updated_at: number;
}

export interface ConfigurationVersionsTable {
  id: string;
  workspace_id: string;
  status: 'pending' | 'uploaded' | 'errored';
  size: number | null;
  created_at: number;
  uploaded_at: number | null;
  /** `tfe-api` for uploads; the provider kind (`github`, `gitea` …) for a commit fetched from version control. */
  source: string;
  /** JSON of the commit a VCS configuration version is (src/server/vcs/ingress.ts); null for uploads. */
  ingress: string | null;
  /** Runs of it are plan-only (what `tofu plan` uploads). */
  speculative: Flag;
  /** Its upload queues a run at once. */
  auto_queue_runs: Flag;
}

export interface RunsTable {
  id: string;
  workspace_id: string;
  configuration_version_id: string;
  status: RunStatus;
  message: string;
  is_destroy: Flag;
  plan_only: Flag;
  auto_apply: Flag;
  has_changes: Flag | null;
  resource_additions: number | null;
  resource_changes: number | null;
  resource_destructions: number | null;
  error_code: string | null;
  error_message: string | null;
  /** JSON object: status → epoch ms when the run entered it. */
  status_timestamps: string;
  /** Who asked for it, TFE's names: `tfe-api`, `tfe-configuration-version` (a commit), `tfe-cli` (the tofu CLI). */
  source: string;
  /** JSON of the engine's plan options (protocol/agent-api.ts planOptions); null: none. */
  plan_options: string | null;
  created_at: number;
  updated_at: number;
}

export interface JobsTable {
  id: string;
  run_id: string;
  pool_id: string;
  kind: JobKind;
  status: JobStatus;
  attempt: number;
  /** How many times the job was put in the queue: 1, and one more each time an agent lost it (a serverless pool's delivery is per wait). */
  queued_count: number;
  agent_id: string | null;
  lease_id: string | null;
  lease_expires_at: number | null;
  job_token_hash: string | null;
  signal: 'cancel' | 'force_cancel' | null;
  signal_delivered: Flag;
  /** What the operation reported (JSON of JobResult), if it did. */
  result: string | null;
  error_code: string | null;
  error_message: string | null;
  created_at: number;
  leased_at: number | null;
  finished_at: number | null;
}

export interface LogChunksTable {
  run_id: string;
  phase: JobKind;
  offset: number;
  data: Uint8Array;
}

export interface StateVersionsTable {
  id: string;
  workspace_id: string;
  run_id: string | null;
  serial: number;
  lineage: string;
  size: number;
  sha256: string;
  /** JSON array of { name, value, sensitive, type }. */
  outputs: string;
  created_at: number;
}

export interface StateLocksTable {
  workspace_id: string;
  lock_id: string;
  /** The LockInfo document the engine sent, as JSON. */
  info: string;
  job_id: string | null;
  created_at: number;
  /** The API token of a user who locked the workspace (TFE's workspace lock); null for a job's lock. */
  token_id: string | null;
}

export interface PoolWebhooksTable {
  pool_id: string;
  url: string;
  /** JSON array of { name, value } with every value sealed. */
  headers: string;
  enabled: Flag;
  /** Sealed. */
  signing_secret: string;
  /** Sealed; still accepted by receivers until previous_secret_expires_at. */
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  deliveries_per_minute: number;
  claim_timeout_ms: number;
  created_at: number;
  updated_at: number;
}

export type WebhookDeliveryStatus = 'pending' | 'sending' | 'delivered' | 'failed' | 'abandoned';

export interface WebhookDeliveriesTable {
  id: string;
  pool_id: string;
  /** Null for a test delivery (event `ping`). */
  job_id: string | null;
  /** The job's queued_count when it was made: one delivery per wait of the job. */
  sequence: number;
  event: 'job.queued' | 'ping';
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  /** While `sending`: when another replica may take the attempt over. */
  locked_until: number | null;
  response_status: number | null;
  /** The start of the receiver's answer, for troubleshooting. */
  response_excerpt: string | null;
  latency_ms: number | null;
  /** Why the last attempt failed when there was no HTTP answer (timeout, refused). */
  error: string | null;
  created_at: number;
  updated_at: number;
}

export interface Database extends VcsTables {
  organizations: OrganizationsTable;
  api_tokens: ApiTokensTable;
  agent_pools: AgentPoolsTable;
  pool_tokens: PoolTokensTable;
  agents: AgentsTable;
  workspaces: WorkspacesTable;
  workspace_tags: WorkspaceTagsTable;
  variables: VariablesTable;
  configuration_versions: ConfigurationVersionsTable;
  runs: RunsTable;
  jobs: JobsTable;
  log_chunks: LogChunksTable;
  state_versions: StateVersionsTable;
  state_locks: StateLocksTable;
  pool_webhooks: PoolWebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
}

/** How a column is declared in the migrations: its SQL type, with ` null` when it may be NULL. */
type SqlType = 'text' | 'integer' | 'bigint' | 'binary';
type SqlTypeOf<V> = [V] extends [Uint8Array] ? 'binary' : [V] extends [number] ? 'integer' | 'bigint' : [V] extends [string] ? 'text' : never;
type ColumnDeclaration<V> = null extends V ? `${SqlTypeOf<NonNullable<V>>} null` : SqlTypeOf<V>;

/** Every table of `Database`, every column of each, declared as its TypeScript type allows. */
export type SchemaColumns = {
  readonly [T in keyof Database]: { readonly [C in keyof Database[T]]-?: ColumnDeclaration<Database[T][C]> };
};

/** Parses a declaration of `schemaColumns`. */
export function parseColumnDeclaration(declaration: string): { type: SqlType; nullable: boolean } {
  const [type, nullable] = declaration.split(' ') as [SqlType, 'null' | undefined];
  return { type, nullable: nullable === 'null' };
}

/**
 * The columns the migrations create, held to the interfaces above by the
 * type checker; `binary` is SQLite's blob and PostgreSQL's bytea.
 */
export const schemaColumns = {
  organizations: { id: 'text', name: 'text', created_at: 'bigint' },
  api_tokens: {
    id: 'text', organization_id: 'text', description: 'text', token_hash: 'text', created_at: 'bigint', last_used_at: 'bigint null',
    revoked_at: 'bigint null',
  },
  agent_pools: { id: 'text', organization_id: 'text', name: 'text', kind: 'text', created_at: 'bigint' },
  pool_tokens: {
    id: 'text', pool_id: 'text', description: 'text', token_hash: 'text', created_at: 'bigint', last_used_at: 'bigint null',
    revoked_at: 'bigint null',
  },
  agents: {
    id: 'text', pool_id: 'text', pool_token_id: 'text', name: 'text', version: 'text', driver: 'text', concurrency: 'integer',
    single: 'integer', status: 'text', session_token_hash: 'text', registered_at: 'bigint', last_seen_at: 'bigint',
    deregistered_at: 'bigint null',
  },
  workspaces: {
    id: 'text', organization_id: 'text', name: 'text', engine: 'text', engine_version: 'text', working_directory: 'text', pool_id: 'text null',
    auto_apply: 'integer', current_run_id: 'text null', created_at: 'bigint', updated_at: 'bigint', execution_mode: 'text', description: 'text',
  },
  workspace_tags: { workspace_id: 'text', tag: 'text' },
  variables: {
    id: 'text', workspace_id: 'text', key: 'text', value: 'text', category: 'text', hcl: 'integer', sensitive: 'integer', description: 'text',
    created_at: 'bigint', updated_at: 'bigint',
  },
  configuration_versions: {
    id: 'text', workspace_id: 'text', status: 'text', size: 'bigint null', created_at: 'bigint', uploaded_at: 'bigint null', source: 'text',
    ingress: 'text null', speculative: 'integer', auto_queue_runs: 'integer',
  },
  runs: {
    id: 'text', workspace_id: 'text', configuration_version_id: 'text', status: 'text', message: 'text', is_destroy: 'integer',
    plan_only: 'integer', auto_apply: 'integer', has_changes: 'integer null', resource_additions: 'integer null',
    resource_changes: 'integer null', resource_destructions: 'integer null', error_code: 'text null', error_message: 'text null',
    status_timestamps: 'text', created_at: 'bigint', updated_at: 'bigint', source: 'text', plan_options: 'text null',
  },
  jobs: {
    id: 'text', run_id: 'text', pool_id: 'text', kind: 'text', status: 'text', attempt: 'integer', queued_count: 'integer', agent_id: 'text null',
    lease_id: 'text null', lease_expires_at: 'bigint null', job_token_hash: 'text null', signal: 'text null', signal_delivered: 'integer',
    result: 'text null', error_code: 'text null', error_message: 'text null', created_at: 'bigint', leased_at: 'bigint null',
    finished_at: 'bigint null',
  },
  log_chunks: { run_id: 'text', phase: 'text', offset: 'bigint', data: 'binary' },
  state_versions: {
    id: 'text', workspace_id: 'text', run_id: 'text null', serial: 'bigint', lineage: 'text', size: 'bigint', sha256: 'text', outputs: 'text',
    created_at: 'bigint',
  },
  state_locks: { workspace_id: 'text', lock_id: 'text', info: 'text', job_id: 'text null', created_at: 'bigint', token_id: 'text null' },
  pool_webhooks: {
    pool_id: 'text', url: 'text', headers: 'text', enabled: 'integer', signing_secret: 'text', previous_secret: 'text null',
    previous_secret_expires_at: 'bigint null', deliveries_per_minute: 'integer', claim_timeout_ms: 'bigint', created_at: 'bigint', updated_at: 'bigint',
  },
  webhook_deliveries: {
    id: 'text', pool_id: 'text', job_id: 'text null', sequence: 'integer', event: 'text', status: 'text', attempts: 'integer',
    next_attempt_at: 'bigint', locked_until: 'bigint null', response_status: 'integer null', response_excerpt: 'text null',
    latency_ms: 'integer null', error: 'text null', created_at: 'bigint', updated_at: 'bigint',
  },
  ...vcsSchemaColumns,
} as const satisfies SchemaColumns;
