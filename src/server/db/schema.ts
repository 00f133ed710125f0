// Row types of every table, as Kysely sees them. Times are epoch milliseconds
// and flags are 0/1 integers so that one repository code serves SQLite and
// PostgreSQL without per-dialect conversions.
import type { AgentStatus, Engine, JobKind, JobStatus, RunStatus } from '../../protocol/statuses.ts';

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
}

export interface Database {
  organizations: OrganizationsTable;
  api_tokens: ApiTokensTable;
  agent_pools: AgentPoolsTable;
  pool_tokens: PoolTokensTable;
  agents: AgentsTable;
  workspaces: WorkspacesTable;
  variables: VariablesTable;
  configuration_versions: ConfigurationVersionsTable;
  runs: RunsTable;
  jobs: JobsTable;
  log_chunks: LogChunksTable;
  state_versions: StateVersionsTable;
  state_locks: StateLocksTable;
}
