// `outpost state …`: a workspace's state versions and its current state.
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import { ApiError } from '../api-error.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { findWorkspace } from '../resource-lookup.ts';
import { formatBytes, formatTimestamp } from '../table.ts';

export function registerStateCommands(program: CommandUnknownOpts, cli: Cli): void {
  const state = program
    .command('state')
    .description('Inspect workspace state')
    .addHelpText('after', `
Every time a run writes state, the server keeps a new state version.

Examples:
  outpost state list --workspace network
  outpost state pull --workspace network > terraform.tfstate`);

  state
    .command('list')
    .description('List the state versions of a workspace, newest first')
    .requiredOption('--workspace <name>', 'workspace whose state versions to list')
    .action(async (options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const workspace = await findWorkspace(api, org, options.workspace);
      const versions = await api.listStateVersions(workspace.id);
      out.result(versions, () =>
        out.table(
          ['ID', 'SERIAL', 'SIZE', 'CREATED'],
          [...versions].sort((x, y) => y.attributes.serial - x.attributes.serial).map((v) => [v.id, String(v.attributes.serial), formatBytes(v.attributes.size), formatTimestamp(v.attributes['created-at'])]),
        ),
      );
    });

  state
    .command('pull')
    .description('Write the current state (JSON) of a workspace to stdout')
    .requiredOption('--workspace <name>', 'workspace whose state to pull')
    .addHelpText('after', `
The state may hold secrets (sensitive outputs and attributes in clear text):
store the file accordingly.

Example:
  outpost state pull --workspace network | jq '.resources | length'`)
    .action(async (options, command) => {
      const { api, org } = apiContext(cli, command);
      const workspace = await findWorkspace(api, org, options.workspace);
      const current = await api.getCurrentStateVersion(workspace.id);
      if (current === undefined) {
        throw new ApiError({ status: 404, code: 'not_found', detail: `workspace ${workspace.attributes.name} has no state yet` });
      }
      const body = await api.downloadState(current.id);
      cli.deps.terminal.stdout.write(body);
      if (body.byteLength > 0 && body[body.byteLength - 1] !== 0x0a) cli.deps.terminal.stdout.write('\n');
    });
}
