// `outpost pool …`: agent pools and the pool tokens agents join them with.
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { poolKinds } from '../../protocol/statuses.ts';
import type { PoolToken } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { findPool } from '../resource-lookup.ts';
import { formatTimestamp } from '../table.ts';
import { registerPoolWebhookCommands } from './pool-webhook.ts';

export function registerPoolCommands(program: CommandUnknownOpts, cli: Cli): void {
  const pool = program
    .command('pool')
    .description('Manage agent pools and their tokens')
    .addHelpText('after', `
An agent pool is a named group of agents; each workspace sends its runs to one
pool. Agents join a pool with a pool token.

Examples:
  outpost pool create production
  outpost pool token create production --description "k8s cluster eu-1"
  outpost pool list`);

  pool
    .command('create')
    .description('Create an agent pool')
    .argument('<name>', 'name of the new pool')
    .addOption(new Option('--kind <kind>', 'runner: its agents run jobs; vcs: its agents reach version control providers for the control plane').choices(poolKinds).default('runner'))
    .addHelpText('after', `
A pool of kind vcs runs no jobs: its agents fetch commits from, and post
commit statuses to, version control providers only their network reaches
(see \`outpost vcs provider create --pool\`). The kind cannot change later.

Examples:
  outpost pool create production
  outpost pool create office-git --kind vcs`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const created = await api.createPool(org, name, options.kind);
      out.result(created, () => out.line(`Created agent pool ${created.attributes.name} (${created.id}).`));
      if (options.kind === 'vcs' && !out.json) {
        out.note(`Agents join it with a pool token (outpost pool token create ${created.attributes.name}); then give it to a provider:`);
        out.note(`  outpost vcs provider create NAME --kind gitlab --http-url https://gitlab.example.internal --token-stdin --pool ${created.attributes.name}`);
      }
    });

  pool
    .command('list')
    .description('List the agent pools of the organization')
    .addHelpText('after', '\nExample:\n  outpost pool list --json')
    .action(async (_options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const pools = await api.listPools(org);
      out.result(pools, () =>
        out.table(
          ['ID', 'NAME', 'KIND', 'AGENTS', 'CREATED'],
          // Servers from before VCS pools send no kind: all their pools run jobs.
          pools.map((p) => [p.id, p.attributes.name, p.attributes.kind ?? 'runner', String(p.attributes['agent-count']), formatTimestamp(p.attributes['created-at'])]),
        ),
      );
    });

  registerPoolTokenCommands(pool, cli);
  registerPoolWebhookCommands(pool, cli);
}

function registerPoolTokenCommands(pool: CommandUnknownOpts, cli: Cli): void {
  const token = pool
    .command('token')
    .description('Create, list and revoke pool tokens')
    .addHelpText('after', `
A pool token lets an agent join a pool (OUTPOST_AGENT_TOKEN). Its secret is
shown once, when it is created; the server keeps only a hash.

Examples:
  outpost pool token create production --description "docker host 3"
  outpost pool token list production
  outpost pool token revoke at-3Fq8Z2vXkWn1`);

  token
    .command('create')
    .description('Create a pool token and print its secret (shown only this once)')
    .argument('<pool>', 'pool name or id (apool-…)')
    .option('--description <text>', 'what the token is for, shown in `pool token list`')
    .addHelpText('after', `
The secret is the only thing written to stdout, so it can be captured:
  TOKEN=$(outpost pool token create production --description ci)`)
    .action(async (poolName, options, command) => {
      const { api, org, out, settings } = apiContext(cli, command);
      const target = await findPool(api, org, poolName);
      const created = await api.createPoolToken(target.id, options.description);
      const secret = created.attributes.token ?? '';
      cli.secrets.push(secret);
      if (out.json) {
        out.data(created);
        return;
      }
      out.note(`Created pool token ${created.id} for agent pool ${target.attributes.name}.`);
      out.note('');
      out.line(secret);
      out.note('');
      out.note('WARNING: copy this token now. It will not be shown again.');
      out.note('Start an agent in this pool with:');
      out.note(`  OUTPOST_URL=${settings.url} OUTPOST_AGENT_TOKEN=<token> outpost agent run`);
    });

  token
    .command('list')
    .description('List the tokens of a pool (never their secrets)')
    .argument('<pool>', 'pool name or id (apool-…)')
    .action(async (poolName, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const target = await findPool(api, org, poolName);
      const tokens = await api.listPoolTokens(target.id);
      out.result(tokens, () => out.table(['ID', 'DESCRIPTION', 'CREATED', 'LAST USED', 'REVOKED'], tokens.map(tokenRow)));
    });

  token
    .command('revoke')
    .description('Revoke a pool token: agents using it are refused from then on')
    .argument('<token-id>', 'token id (at-…), from `outpost pool token list`')
    .addHelpText('after', '\nExample:\n  outpost pool token revoke at-3Fq8Z2vXkWn1')
    .action(async (tokenId, _options, command) => {
      const { api, out } = apiContext(cli, command);
      await api.revokePoolToken(tokenId);
      out.result({ id: tokenId, type: 'authentication-tokens' }, () => out.line(`Revoked pool token ${tokenId}.`));
    });
}

function tokenRow(token: PoolToken): string[] {
  const a = token.attributes;
  return [
    token.id,
    a.description ?? '',
    formatTimestamp(a['created-at']),
    a['last-used-at'] === null ? 'never' : formatTimestamp(a['last-used-at']),
    a['revoked-at'] === null ? '-' : formatTimestamp(a['revoked-at']),
  ];
}
