// `outpost var …`: workspace variables, Terraform input variables or
// environment variables. Sensitive values are write-only: the API never
// returns them, and this CLI never prints them.
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { Variable, VariableCategory, VariableInput } from '../api-resources.ts';
import { ApiError } from '../api-error.ts';
import { apiContext, type Cli } from '../command-context.ts';
import type { InputStream } from '../output.ts';
import { findVariable, findWorkspace } from '../resource-lookup.ts';

const categoryLabel: Readonly<Record<VariableCategory, string>> = { terraform: 'Terraform variable', env: 'environment variable' };

export function registerVariableCommands(program: CommandUnknownOpts, cli: Cli): void {
  const variable = program
    .command('var')
    .description('Manage workspace variables')
    .addHelpText('after', `
Terraform variables (the default) set input variables of the root module;
environment variables (--env) are set for the engine, e.g. provider
credentials. A variable is identified by its key and that kind.

Examples:
  outpost var set region eu-west-1 --workspace network
  outpost var set AWS_SECRET_ACCESS_KEY - --env --sensitive --workspace network < secret.txt
  outpost var list --workspace network`);

  variable
    .command('set')
    .description('Create a variable, or update it if it exists')
    .argument('<key>', 'variable name')
    .argument('<value>', 'its value; `-` reads the value from stdin (keeps secrets out of shell history)')
    .requiredOption('--workspace <name>', 'workspace to set it in')
    .option('--env', 'an environment variable instead of a Terraform variable')
    .option('--hcl', 'parse the value as HCL (lists, maps, numbers) instead of a string')
    .option('--sensitive', 'write-only: the value is never shown again (a sensitive variable stays sensitive)')
    .option('--description <text>', 'what the variable is for')
    .addHelpText('after', `
The flags describe the whole variable: updating without --hcl makes it a
plain string again. Sensitivity only goes one way; to make a sensitive
variable readable again, delete it and set it anew.

Examples:
  outpost var set instance_count 3 --hcl --workspace network
  outpost var set tags '{ team = "infra" }' --hcl --workspace network
  echo -n "$TOKEN" | outpost var set GITHUB_TOKEN - --env --sensitive --workspace network`)
    .action(async (key, rawValue, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const value = rawValue === '-' ? await readValueFromStdin(cli.deps.terminal.stdin) : rawValue;
      // An error message that echoes the request must not show a secret.
      if (options.sensitive === true) cli.secrets.push(value);
      const category: VariableCategory = options.env === true ? 'env' : 'terraform';
      const workspace = await findWorkspace(api, org, options.workspace);
      const existing = await findVariable(api, workspace.id, key, category);
      const input: VariableInput = {
        key,
        value,
        category,
        hcl: options.hcl === true,
        sensitive: options.sensitive === true || existing?.attributes.sensitive === true,
        description: options.description,
      };
      const saved = existing === undefined ? await api.createVariable(workspace.id, input) : await api.updateVariable(workspace.id, existing.id, input);
      const verb = existing === undefined ? 'Created' : 'Updated';
      const sensitivity = saved.attributes.sensitive ? ' (sensitive)' : '';
      out.result(saved, () => out.line(`${verb} ${categoryLabel[category]} ${key}${sensitivity} in workspace ${workspace.attributes.name}.`));
    });

  variable
    .command('list')
    .description('List the variables of a workspace (sensitive values are not shown)')
    .requiredOption('--workspace <name>', 'workspace to list')
    .addHelpText('after', '\nExample:\n  outpost var list --workspace network')
    .action(async (options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const workspace = await findWorkspace(api, org, options.workspace);
      const variables = await api.listVariables(workspace.id);
      const shorten = out.stdoutIsTerminal;
      out.result(variables, () =>
        out.table(['KEY', 'VALUE', 'CATEGORY', 'HCL', 'SENSITIVE', 'DESCRIPTION'], variables.map((v) => variableRow(v, shorten))),
      );
    });

  variable
    .command('delete')
    .description('Delete a variable')
    .argument('<key>', 'variable name')
    .requiredOption('--workspace <name>', 'workspace to delete it from')
    .option('--env', 'delete the environment variable of that name, not the Terraform variable')
    .addHelpText('after', '\nExamples:\n  outpost var delete region --workspace network\n  outpost var delete AWS_PROFILE --env --workspace network')
    .action(async (key, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const category: VariableCategory = options.env === true ? 'env' : 'terraform';
      const workspace = await findWorkspace(api, org, options.workspace);
      const existing = await findVariable(api, workspace.id, key, category);
      if (existing === undefined) {
        const detail = `workspace ${workspace.attributes.name} has no ${categoryLabel[category]} ${key}`;
        throw new ApiError({ status: 404, code: 'not_found', detail });
      }
      await api.deleteVariable(workspace.id, existing.id);
      out.result(existing, () => out.line(`Deleted ${categoryLabel[category]} ${key} from workspace ${workspace.attributes.name}.`));
    });
}

function variableRow(variable: Variable, shorten: boolean): string[] {
  const a = variable.attributes;
  let value = a.sensitive ? '(sensitive)' : (a.value ?? '');
  if (shorten && value.length > 50) value = `${value.slice(0, 49)}…`;
  return [a.key, value, a.category, a.hcl ? 'yes' : 'no', a.sensitive ? 'yes' : 'no', a.description ?? ''];
}

/** The whole of stdin, minus one trailing newline (what `echo` and editors add). */
async function readValueFromStdin(stdin: InputStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
