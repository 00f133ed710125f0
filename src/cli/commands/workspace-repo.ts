// `outpost workspace repo …`: the repository a workspace follows. Pushes to
// its branch (and tags matching its regular expression) start runs; pull
// requests get speculative plans; what came of each is a VCS trigger.
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { OutpostApi } from '../api-client.ts';
import { relatedId, type VcsTrigger, type Workspace, type WorkspaceInput } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { UsageError } from '../exit-codes.ts';
import type { Output } from '../output.ts';
import { findVcsProvider, findWorkspace } from '../resource-lookup.ts';
import { formatTimestamp } from '../table.ts';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function limit(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 100) throw new UsageError(`--limit ${value}: expected a whole number from 1 to 100`);
  return Number(value);
}

export function registerWorkspaceRepoCommands(workspace: CommandUnknownOpts, cli: Cli): void {
  const repo = workspace
    .command('repo')
    .description('Link a workspace to a repository: pushes start runs, pull requests get speculative plans')
    .addHelpText('after', `
The repository is on a version control provider (outpost vcs provider).
Runs start on pushes to the workspace's branch that change files under its
working directory (or matching its trigger patterns), and on tags matching
its tags regular expression; pull requests to the branch get a plan only.

Examples:
  outpost workspace repo set network --provider github --repository acme/network --branch main
  outpost workspace repo show network
  outpost workspace repo remove network`);

  repo
    .command('set')
    .description('Link the workspace to a repository, or change its link; only the options given change')
    .argument('<workspace>', 'workspace name (or ws- id)')
    .requiredOption('--provider <provider>', 'the provider the repository is on (name or vcs- id)')
    .requiredOption('--repository <identifier>', 'the repository: owner/name on a forge (group/subgroup/name on GitLab, PROJECT/slug on Bitbucket), the clone URL for git')
    .option('--branch <branch>', 'the branch whose pushes start runs (default: the repository\'s default branch)')
    .option('--trigger <pattern>', 'start runs only when a changed path matches this glob, from the repository root (repeatable; replaces all)', collect)
    .option('--no-triggers', 'start runs on any change under the working directory again')
    .option('--tags-regex <regex>', 'tags whose name matches start runs, e.g. ^v\\d+\\.\\d+\\.\\d+$')
    .option('--no-tags-regex', 'tags start nothing again')
    .option('--submodules', 'fetch the repository\'s submodules with it')
    .option('--no-submodules', 'do not fetch submodules')
    .option('--speculative', 'plan pull requests to the branch (the default)')
    .option('--no-speculative', 'leave pull requests alone')
    .addHelpText('after', `
Examples:
  outpost workspace repo set network --provider github --repository acme/infra --branch main --trigger 'network/**' --trigger 'modules/**'
  outpost workspace repo set network --provider github --repository acme/infra --tags-regex '^v[0-9]+' --no-speculative
  outpost workspace repo set legacy --provider internal --repository ssh://git@git.example.internal/ops/legacy.git`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findWorkspace(api, org, name);
      const provider = await findVcsProvider(api, org, options.provider);
      const input: WorkspaceInput = {
        'vcs-repo': {
          identifier: options.repository,
          'vcs-provider-id': provider.id,
          ...(options.branch === undefined ? {} : { branch: options.branch }),
          ...(options.submodules === undefined ? {} : { 'ingress-submodules': options.submodules }),
          ...(options.tagsRegex === undefined ? {} : { 'tags-regex': options.tagsRegex === false ? null : options.tagsRegex }),
        },
        ...(options.triggers === false ? { 'trigger-patterns': [] } : options.trigger === undefined ? {} : { 'trigger-patterns': options.trigger }),
        ...(options.speculative === undefined ? {} : { 'speculative-enabled': options.speculative }),
      };
      const updated = await api.updateWorkspace(found.id, input);
      if (out.json) return out.data(updated);
      const link = updated.attributes['vcs-repo'];
      const branch = link?.branch ? `branch ${link.branch}` : 'its default branch';
      out.line(`Linked workspace ${updated.attributes.name} to ${options.repository} (${branch}) on ${provider.attributes.name}.`);
      const status = updated.attributes['vcs-status'];
      if (status) out.note(`Version control waits: ${status}`);
      out.note(`What pushes and pull requests start: outpost workspace repo show ${updated.attributes.name}`);
    });

  repo
    .command('show')
    .description('Show the workspace\'s repository link, what its version control work waits for, and its last triggers')
    .argument('<workspace>', 'workspace name (or ws- id)')
    .option('--limit <n>', 'how many triggers (1-100)', limit, 10)
    .addHelpText('after', `
With --json: {"workspace": <the workspace>, "vcs-triggers": [<trigger>…]}.

Example:
  outpost workspace repo show network --limit 30`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findWorkspace(api, org, name);
      const triggers = await api.listVcsTriggers(found.id, options.limit);
      if (out.json) return out.data({ workspace: found, 'vcs-triggers': triggers });
      await printLink(api, out, found, triggers);
    });

  repo
    .command('remove')
    .description('Unlink the workspace from its repository: pushes no longer start runs')
    .argument('<workspace>', 'workspace name (or ws- id)')
    .addHelpText('after', '\nExample:\n  outpost workspace repo remove network')
    .action(async (name, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findWorkspace(api, org, name);
      const link = found.attributes['vcs-repo'];
      const updated = await api.updateWorkspace(found.id, { 'vcs-repo': null });
      out.result(updated, () =>
        out.line(link ? `Unlinked workspace ${found.attributes.name} from ${link.identifier}.` : `Workspace ${found.attributes.name} was not linked to a repository.`),
      );
    });
}

async function printLink(api: OutpostApi, out: Output, workspace: Workspace, triggers: readonly VcsTrigger[]): Promise<void> {
  const a = workspace.attributes;
  const link = a['vcs-repo'];
  if (!link) out.line(`Workspace ${a.name} is not linked to a repository.`);
  else {
    const provider = await api.getVcsProvider(link['vcs-provider-id']);
    const patterns = a['trigger-patterns'] ?? [];
    out.fields([
      ['Workspace', `${a.name} (${workspace.id})`],
      ['Provider', `${provider.attributes.name} (${provider.attributes.kind}, ${provider.id})`],
      ['Repository', link['repository-http-url'] ?? link.identifier],
      ['Branch', link.branch || '(default branch)'],
      ['Trigger patterns', patterns.length === 0 ? `(any change under ${a['working-directory'] || 'the repository root'})` : patterns.join(' ')],
      ['Tags regex', link['tags-regex'] ?? '(tags start nothing)'],
      ['Submodules', link['ingress-submodules'] ? 'yes' : 'no'],
      ['Pull requests', a['speculative-enabled'] === false ? 'ignored' : 'speculative plans'],
      ['Status', a['vcs-status'] ?? 'ok'],
    ]);
  }
  if (triggers.length === 0) return;
  out.line();
  out.table(
    ['SHA', 'KIND', 'REF', 'STATUS', 'REASON', 'RUN', 'AT'],
    triggers.map((t) => {
      const x = t.attributes;
      return [x['commit-sha'].slice(0, 12), x.kind, x.ref, x.status, x.reason ?? '-', relatedId(t, 'run') ?? '-', formatTimestamp(x['created-at'])];
    }),
  );
}
