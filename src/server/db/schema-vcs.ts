// Row types of the version control tables (migrations/0003-vcs.ts), kept
// apart from schema.ts only for its length; schema.ts ties them in.
import type { VcsProviderKind } from '../../protocol/vcs-api.ts';
/** 0/1, as schema.ts's Flag (not imported: schema.ts imports this file). */
type Flag = 0 | 1;

export interface VcsProvidersTable {
  id: string;
  organization_id: string;
  name: string;
  kind: VcsProviderKind;
  http_url: string | null;
  api_url: string | null;
  /** Sealed JSON of the token, user name, SSH key and known hosts. */
  credentials: string;
  /** Sealed; what forges sign webhooks with (or send, GitLab). */
  webhook_secret: string;
  /** Sealed; still accepted until previous_webhook_secret_expires_at. */
  previous_webhook_secret: string | null;
  previous_webhook_secret_expires_at: number | null;
  /** A `vcs` pool whose agents reach the provider; null: the server does. */
  pool_id: string | null;
  /** 0: no polling. */
  poll_interval_ms: number;
  created_at: number;
  updated_at: number;
}

export interface WorkspaceRepositoriesTable {
  workspace_id: string;
  provider_id: string;
  repository: string;
  /** '' until the default branch is known; then the branch runs follow. */
  branch: string;
  /** JSON array of glob patterns; empty: any change under the working directory. */
  trigger_patterns: string;
  tags_regex: string | null;
  submodules: Flag;
  /** Pull requests get speculative plans. */
  speculative: Flag;
  /** The branch's newest commit as last seen (polling's baseline). */
  last_commit_sha: string | null;
  last_polled_at: number | null;
  /** Why the last provider work for this workspace failed, until one succeeds. */
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

export interface VcsDeliveriesTable {
  id: string;
  provider_id: string;
  delivery_id: string;
  event: string;
  /** What the delivery led to, for `outpost vcs deliveries`. */
  outcome: string;
  received_at: number;
}

export type VcsTriggerKind = 'push' | 'tag' | 'pull_request' | 'poll' | 'manual';
export type VcsTriggerStatus = 'waiting' | 'queued' | 'skipped' | 'failed';

export interface VcsTriggersTable {
  id: string;
  workspace_id: string;
  /** `push:<sha>`, `pr:<number>:<sha>`, `tag:<name>:<sha>`: one run per commit and cause. */
  trigger_key: string;
  kind: VcsTriggerKind;
  sha: string;
  /** The commit before (a push's `before`, polling's previous head), to find the changed files. */
  compare_to: string | null;
  ref: string;
  /** JSON { number, url, title, base } for a pull request. */
  pull_request: string | null;
  /** JSON { message, author, url, sender } as far as the event told. */
  commit: string | null;
  /** JSON array of paths, or null when the event did not list them. */
  changed_files: string | null;
  status: VcsTriggerStatus;
  reason: string | null;
  run_id: string | null;
  created_at: number;
  updated_at: number;
}

export type VcsTaskKind = 'refs' | 'fetch' | 'status' | 'check';
export type VcsTaskStatus = 'queued' | 'running' | 'done' | 'failed';

export interface VcsTasksTable {
  id: string;
  provider_id: string;
  kind: VcsTaskKind;
  /** Set while the task is outstanding, so the same work is queued once; cleared when it ends. */
  dedupe_key: string | null;
  /** JSON of what to do (src/server/vcs/tasks.ts). */
  payload: string;
  status: VcsTaskStatus;
  attempts: number;
  /** The VCS agent running it; null when the server does, or nobody yet. */
  agent_id: string | null;
  /** While running: when another may take it over. */
  locked_until: number | null;
  next_attempt_at: number;
  error: string | null;
  /** JSON of what a `check` task found, for the request waiting for it. */
  result: string | null;
  created_at: number;
  updated_at: number;
}

export interface VcsCommitStatusesTable {
  run_id: string;
  provider_id: string;
  repository: string;
  sha: string;
  context: string;
  /** The last state reported (`pending`, `success:<description>` …); null before the first. */
  reported: string | null;
  /** The run's updated_at when last compared. */
  checked_at: number;
}

export interface VcsTables {
  vcs_providers: VcsProvidersTable;
  workspace_repositories: WorkspaceRepositoriesTable;
  vcs_deliveries: VcsDeliveriesTable;
  vcs_triggers: VcsTriggersTable;
  vcs_tasks: VcsTasksTable;
  vcs_commit_statuses: VcsCommitStatusesTable;
}

export const vcsSchemaColumns = {
  vcs_providers: {
    id: 'text', organization_id: 'text', name: 'text', kind: 'text', http_url: 'text null', api_url: 'text null', credentials: 'text',
    webhook_secret: 'text', previous_webhook_secret: 'text null', previous_webhook_secret_expires_at: 'bigint null', pool_id: 'text null',
    poll_interval_ms: 'bigint', created_at: 'bigint', updated_at: 'bigint',
  },
  workspace_repositories: {
    workspace_id: 'text', provider_id: 'text', repository: 'text', branch: 'text', trigger_patterns: 'text', tags_regex: 'text null',
    submodules: 'integer', speculative: 'integer', last_commit_sha: 'text null', last_polled_at: 'bigint null', last_error: 'text null',
    created_at: 'bigint', updated_at: 'bigint',
  },
  vcs_deliveries: { id: 'text', provider_id: 'text', delivery_id: 'text', event: 'text', outcome: 'text', received_at: 'bigint' },
  vcs_triggers: {
    id: 'text', workspace_id: 'text', trigger_key: 'text', kind: 'text', sha: 'text', compare_to: 'text null', ref: 'text',
    pull_request: 'text null', commit: 'text null', changed_files: 'text null', status: 'text', reason: 'text null', run_id: 'text null',
    created_at: 'bigint', updated_at: 'bigint',
  },
  vcs_tasks: {
    id: 'text', provider_id: 'text', kind: 'text', dedupe_key: 'text null', payload: 'text', status: 'text', attempts: 'integer',
    agent_id: 'text null', locked_until: 'bigint null', next_attempt_at: 'bigint', error: 'text null', result: 'text null', created_at: 'bigint',
    updated_at: 'bigint',
  },
  vcs_commit_statuses: {
    run_id: 'text', provider_id: 'text', repository: 'text', sha: 'text', context: 'text', reported: 'text null', checked_at: 'bigint',
  },
} as const;
