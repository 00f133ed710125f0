// `outpost workspace …`: create, list and inspect workspaces.
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { engines, executionModes } from '../../protocol/statuses.ts';
import type { OutpostApi } from '../api-client.ts';
import { relatedId, type Workspace, type WorkspaceInput } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { UsageError } from '../exit-codes.ts';
import { findPool, findWorkspace } from '../resource-lookup.ts';
import { formatTimestamp } from '../table.ts';
import { registerWorkspaceRepoCommands } from './workspace-repo.ts';

/** `--tags a,b`: the tags; an empty string: none; absent: unchanged. */
function tagsOption(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((tag) => tag.trim()).filter((tag) => tag !== '');
}

export function registerWorkspaceCommands(program: CommandUnknownOpts, cli: Cli): void {
  const workspace = program
    .command('workspace')
    .description('Manage workspaces')
    .addHelpText('after', `
A workspace is one root module with its state, variables, engine and version,
and the agent pool its runs go to.

Examples:
  outpost workspace create network --pool production --engine-version 1.9.0
  outpost workspace update network --auto-apply yes
  outpost workspace list
  outpost workspace show network
  outpost workspace repo set network --provider github --repository acme/network`);

  workspace
    .command('create')
    .description('Create a workspace')
    .argument('<name>', 'name of the new workspace')
    .option('--pool <pool>', 'agent pool its runs go to (name or apool- id)')
    .addOption(new Option('--engine <engine>', 'engine that runs it').choices(engines))
    .option('--engine-version <version>', 'engine version, e.g. 1.9.0 (default: the server\'s choice)')
    .option('--working-directory <dir>', 'directory of the root module inside the uploaded configuration')
    .option('--auto-apply', 'apply runs without waiting for confirmation')
    .addOption(new Option('--execution-mode <mode>', 'agent: runs go to its pool; local: the tofu CLI runs the engine, only state and locking live here').choices(executionModes))
    .option('--tags <tags>', 'comma-separated tags (the tofu CLI\'s cloud block selects workspaces by them)')
    .addHelpText('after', `
Examples:
  outpost workspace create network --pool production
  outpost workspace create laptop-dev --execution-mode local --tags dev,network
  outpost workspace create legacy --engine terraform --engine-version 1.5.7 --working-directory envs/prod`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const pool = options.pool === undefined ? undefined : await findPool(api, org, options.pool);
      const input: WorkspaceInput = {
        name,
        engine: options.engine,
        'terraform-version': options.engineVersion,
        'working-directory': options.workingDirectory,
        'auto-apply': options.autoApply === true ? true : undefined,
        'agent-pool-id': pool?.id,
        'execution-mode': options.executionMode,
        'tag-names': tagsOption(options.tags),
      };
      const created = await api.createWorkspace(org, input);
      out.result(created, () => out.line(`Created workspace ${created.attributes.name} (${created.id}).`));
    });

  workspace
    .command('update')
    .description('Change the settings of a workspace')
    .argument('<name>', 'workspace name (or ws- id)')
    .option('--pool <pool>', 'agent pool its runs go to (name or apool- id)')
    .addOption(new Option('--engine <engine>', 'engine that runs it').choices(engines))
    .option('--engine-version <version>', 'engine version, e.g. 1.9.0')
    .option('--working-directory <dir>', 'directory of the root module inside the uploaded configuration')
    .addOption(new Option('--auto-apply <yes|no>', 'apply runs without waiting for confirmation').choices(['yes', 'no']))
    .addOption(new Option('--execution-mode <mode>', 'agent: runs go to its pool; local: the tofu CLI runs the engine').choices(executionModes))
    .option('--tags <tags>', 'comma-separated tags, replacing the current ones (an empty string removes all)')
    .addHelpText('after', `
Only the settings given change.

Examples:
  outpost workspace update network --pool production
  outpost workspace update network --engine-version 1.10.0 --auto-apply yes
  outpost workspace update network --execution-mode local --tags network,prod`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findWorkspace(api, org, name);
      const pool = options.pool === undefined ? undefined : await findPool(api, org, options.pool);
      const input: WorkspaceInput = {
        engine: options.engine,
        'terraform-version': options.engineVersion,
        'working-directory': options.workingDirectory,
        'auto-apply': options.autoApply === undefined ? undefined : options.autoApply === 'yes',
        'agent-pool-id': pool?.id,
        'execution-mode': options.executionMode,
        'tag-names': tagsOption(options.tags),
      };
      if (Object.values(input).every((value) => value === undefined)) {
        throw new UsageError('nothing to change: give at least one of --pool, --engine, --engine-version, --working-directory, --auto-apply, --execution-mode, --tags');
      }
      const updated = await api.updateWorkspace(found.id, input);
      out.result(updated, () => out.line(`Updated workspace ${updated.attributes.name}.`));
    });

  workspace
    .command('list')
    .description('List the workspaces of the organization')
    .action(async (_options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const [workspaces, pools] = await Promise.all([api.listWorkspaces(org), api.listPools(org)]);
      const poolNames = new Map(pools.map((pool) => [pool.id, pool.attributes.name]));
      out.result(workspaces, () =>
        out.table(
          ['ID', 'NAME', 'ENGINE', 'VERSION', 'POOL', 'AUTO-APPLY', 'LOCKED'],
          workspaces.map((w) => [
            w.id,
            w.attributes.name,
            w.attributes.engine,
            w.attributes['terraform-version'],
            poolLabel(relatedId(w, 'agent-pool'), poolNames),
            yesNo(w.attributes['auto-apply']),
            yesNo(w.attributes.locked),
          ]),
        ),
      );
    });

  workspace
    .command('show')
    .description('Show one workspace')
    .argument('<name>', 'workspace name (or ws- id)')
    .addHelpText('after', '\nExample:\n  outpost workspace show network --json')
    .action(async (name, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findWorkspace(api, org, name);
      if (out.json) {
        out.data(found);
        return;
      }
      out.fields(await workspaceFields(api, found));
    });

  registerWorkspaceRepoCommands(workspace, cli);
}

async function workspaceFields(api: OutpostApi, workspace: Workspace): Promise<[string, string][]> {
  const a = workspace.attributes;
  const poolId = relatedId(workspace, 'agent-pool');
  const poolName = poolId === undefined ? undefined : (await api.getPool(poolId)).attributes.name;
  return [
    ['ID', workspace.id],
    ['Name', a.name],
    ['Engine', `${a.engine} ${a['terraform-version']}`],
    ['Working directory', a['working-directory'] ? a['working-directory'] : '(root)'],
    ['Agent pool', poolId === undefined ? '-' : `${poolName} (${poolId})`],
    ['Auto-apply', yesNo(a['auto-apply'])],
    ['Execution mode', a['execution-mode']],
    ['Locked', yesNo(a.locked)],
    ['Repository', repositoryLabel(a['vcs-repo'])],
    ['Current run', relatedId(workspace, 'current-run') ?? '-'],
    ['Created', formatTimestamp(a['created-at'])],
  ];
}

function repositoryLabel(link: Workspace['attributes']['vcs-repo']): string {
  if (!link) return '-';
  return link.branch ? `${link.identifier} (${link.branch})` : link.identifier;
}

function poolLabel(poolId: string | undefined, names: ReadonlyMap<string, string>): string {
  if (poolId === undefined) return '-';
  return names.get(poolId) ?? poolId;
}

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}
