// Workspaces as the API shows them (TFE: workspaces), for the routes of every
// domain that answers with one (the workspace lock actions answer with the
// workspace, as TFE's do).
import type { Workspace } from '../../protocol/api-resources.ts';
import type { ServerContext } from '../context.ts';
import { iso, relation } from '../http/json-api.ts';
import { lockHolderOf } from '../state/workspace-lock.ts';
import { repositoryOf, type RepositoryView } from '../vcs/service.ts';
import type { WorkspaceView } from './service.ts';

function presentRepository(view: RepositoryView | undefined): Partial<Workspace['attributes']> {
  if (!view) return { 'vcs-repo': null, 'trigger-patterns': [], 'speculative-enabled': true, 'vcs-status': null };
  const { link, provider } = view;
  return {
    'vcs-repo': {
      identifier: link.repository,
      branch: link.branch,
      'vcs-provider-id': provider.id,
      'oauth-token-id': provider.id,
      'ingress-submodules': link.submodules === 1,
      'tags-regex': link.tags_regex,
      'repository-http-url': provider.kind === 'git' ? null : `${provider.http_url ?? ''}/${link.repository}`,
    },
    'trigger-patterns': JSON.parse(link.trigger_patterns) as string[],
    'speculative-enabled': link.speculative === 1,
    'vcs-status': view.status,
  };
}

const workspacePermissions = Object.fromEntries(
  [
    'can-update',
    'can-destroy',
    'can-queue-run',
    'can-queue-apply',
    'can-queue-destroy',
    'can-read-variable',
    'can-update-variable',
    'can-lock',
    'can-unlock',
    'can-force-unlock',
    'can-read-settings',
    'can-manage-tags',
    'can-read-state-versions',
    'can-create-state-versions',
    'can-read-state-outputs',
    'can-read-run-state',
  ].map((name) => [name, true]),
);

export async function present(ctx: ServerContext, row: WorkspaceView): Promise<Workspace> {
  const workspace = presentWorkspace(row);
  const holder = row.locked ? await lockHolderOf(ctx, row.id) : undefined;
  // go-tfe's locked-by knows runs, users and teams; an API token is the "user".
  const lockedBy = holder?.kind === 'user' ? relation('users', holder.tokenId) : holder?.kind === 'job' ? relation('runs', holder.runId) : { data: null };
  return {
    ...workspace,
    attributes: { ...workspace.attributes, ...presentRepository(await repositoryOf(ctx, row.id)) },
    relationships: { ...workspace.relationships, 'locked-by': lockedBy },
  };
}

function presentWorkspace(row: WorkspaceView): Workspace {
  return {
    id: row.id,
    type: 'workspaces',
    attributes: {
      name: row.name,
      description: row.description,
      'auto-apply': row.auto_apply === 1,
      'working-directory': row.working_directory,
      engine: row.engine,
      'terraform-version': row.engine_version,
      'execution-mode': row.execution_mode,
      // The deprecated flag older TFE clients read instead of the execution mode.
      operations: row.execution_mode !== 'local',
      locked: row.locked,
      'tag-names': row.tags,
      // Logs are the engine's human output: the CLI prints them as they come.
      'structured-run-output-enabled': false,
      'setting-overwrites': { 'execution-mode': true, 'agent-pool': true },
      // API tokens act for their whole organization (docs/api.md), so every action is theirs.
      permissions: workspacePermissions,
      actions: { 'is-destroyable': row.current_run_id === null },
      'created-at': iso(row.created_at),
      'updated-at': iso(row.updated_at),
    },
    relationships: {
      organization: relation('organizations', row.organization_id),
      'agent-pool': relation('agent-pools', row.pool_id),
      'current-run': relation('runs', row.current_run_id),
    },
  };
}

