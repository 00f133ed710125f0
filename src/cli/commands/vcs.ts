// `outpost vcs provider …`: the version control providers (forges and plain
// git servers) whose repositories workspaces follow, and the webhooks they
// sent. Linking a workspace to a repository is `outpost workspace repo`
// (workspace-repo.ts).
//
// Secrets never travel as argument values, which shell history and process
// lists keep: the provider's token comes from stdin or a file, its SSH key
// and known hosts from files, and the webhook secret the server makes is
// printed once, alone on stdout, the way pool tokens and pool webhook
// secrets are.
import { readFile } from 'node:fs/promises';
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { asDurationWithin, formatDuration } from '../../config/settings.ts';
import { vcsProviderKinds } from '../../protocol/vcs-api.ts';
import type { OutpostApi } from '../api-client.ts';
import { relatedId, type VcsProvider, type VcsProviderKind, type VcsProviderUpdate } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { UsageError } from '../exit-codes.ts';
import type { InputStream, Output } from '../output.ts';
import { findPool, findVcsProvider } from '../resource-lookup.ts';
import { formatTimestamp } from '../table.ts';

function wholeNumber(flag: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`${flag} ${value}: expected a whole number from ${min} to ${max}`);
    return Number(value);
  };
}

function overlapSeconds(value: string): number {
  try {
    return asDurationWithin(0, 7 * 86_400_000)(value) / 1000;
  } catch (error) {
    throw new UsageError(`--overlap ${value}: ${(error as Error).message}`);
  }
}

// The options create and update share; a factory each, as an Option belongs to one command.
const settingOptions = {
  httpUrl: () => new Option('--http-url <url>', 'the forge\'s web address (https://github.com, https://gitlab.example.com); for git, unused'),
  apiUrl: () => new Option('--api-url <url>', 'the forge\'s API address when it is not derived from --http-url (GitHub Enterprise Server: https://ghe.example.com/api/v3)'),
  tokenStdin: () => new Option('--token-stdin', 'read the provider\'s access token from stdin').conflicts('tokenFile'),
  tokenFile: () => new Option('--token-file <file>', 'read the provider\'s access token from a file'),
  username: () => new Option('--username <name>', 'user name sent with the token over HTTPS, for servers that want one'),
  sshKeyFile: () => new Option('--ssh-key-file <file>', 'git only: private key (OpenSSH format, no passphrase) for ssh:// repositories'),
  knownHostsFile: () => new Option('--known-hosts-file <file>', 'git only: known_hosts lines the SSH server\'s key must match'),
  pool: () => new Option('--pool <pool>', 'reach the provider through the agents of this pool of kind vcs (name or apool- id), not from the server'),
  pollInterval: () => new Option('--poll-interval <seconds>', 'look for new commits this often (git ls-remote); 0: webhooks only').argParser(wholeNumber('--poll-interval', 0, 86_400)),
};

interface SettingFlags {
  readonly httpUrl?: string | undefined;
  readonly apiUrl?: string | undefined;
  readonly tokenStdin?: boolean | undefined;
  readonly tokenFile?: string | undefined;
  readonly username?: string | undefined;
  readonly sshKeyFile?: string | undefined;
  readonly knownHostsFile?: string | undefined;
  readonly pool?: string | boolean | undefined;
  readonly pollInterval?: number | undefined;
}

const secretsHelp = `
--token is the global option for Outpost's own API token: the provider's
token is read with --token-stdin or --token-file, never given as an argument
(shell history and process lists keep those).`;

export function registerVcsCommands(program: CommandUnknownOpts, cli: Cli): void {
  const vcs = program
    .command('vcs')
    .description('Connect version control: providers whose repositories workspaces follow')
    .addHelpText('after', `
A provider is a forge (GitHub, GitLab, Bitbucket Data Center, Gitea) or a
plain git server, with the credentials to read its repositories. Workspaces
linked to one of its repositories (outpost workspace repo set) run on pushes,
tags and pull requests: the forge's webhook or polling tells the server.
See docs/vcs.md.

Examples:
  outpost vcs provider create github --kind github --http-url https://github.com --token-stdin < token.txt
  outpost workspace repo set network --provider github --repository acme/network --branch main
  outpost vcs provider deliveries github`);
  const provider = vcs
    .command('provider')
    .description('Create, change and inspect version control providers')
    .addHelpText('after', `
Examples:
  outpost vcs provider create gitlab --kind gitlab --http-url https://gitlab.example.com --token-file ./gitlab-token
  outpost vcs provider list
  outpost vcs provider rotate-secret gitlab --overlap 2h`);

  provider
    .command('create')
    .description('Create a provider; prints its webhook URL and its webhook secret (shown only this once)')
    .argument('<name>', 'name of the new provider (letters, digits, ., - and _)')
    .addOption(new Option('--kind <kind>', 'what the provider is').choices(vcsProviderKinds).makeOptionMandatory())
    .addOption(settingOptions.httpUrl())
    .addOption(settingOptions.apiUrl())
    .addOption(settingOptions.tokenStdin())
    .addOption(settingOptions.tokenFile())
    .addOption(settingOptions.username())
    .addOption(settingOptions.sshKeyFile())
    .addOption(settingOptions.knownHostsFile())
    .addOption(settingOptions.pool())
    .addOption(settingOptions.pollInterval())
    .addHelpText('after', `${secretsHelp}

The webhook secret is the only thing written to stdout, so it can be captured;
paste it, with the webhook URL printed on stderr, into the forge's webhook
settings. A git provider has no webhook: it is polled (default every 60 s).

Examples:
  outpost vcs provider create github --kind github --http-url https://github.com --token-stdin < token.txt
  SECRET=$(outpost vcs provider create gitea --kind gitea --http-url https://gitea.example.com --token-file ./token)
  outpost vcs provider create internal --kind git --ssh-key-file ./deploy_key --known-hosts-file ./known_hosts --pool office-git`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const settings = await providerSettings(cli, api, org, options);
      const created = await api.createVcsProvider(org, { name, kind: options.kind, ...settings });
      printWithSecret(cli, out, created, `Created VCS provider ${created.attributes.name} (${created.id}).`);
    });

  provider
    .command('list')
    .description('List the version control providers of the organization')
    .addHelpText('after', '\nExample:\n  outpost vcs provider list --json')
    .action(async (_options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const [providers, pools] = await Promise.all([api.listVcsProviders(org), api.listPools(org)]);
      const poolNames = new Map(pools.map((pool) => [pool.id, pool.attributes.name]));
      out.result(providers, () =>
        out.table(
          ['ID', 'NAME', 'KIND', 'URL', 'VIA', 'POLLING', 'CREATED'],
          providers.map((p) => {
            const poolId = relatedId(p, 'agent-pool');
            const a = p.attributes;
            return [p.id, a.name, a.kind, a['http-url'] ?? '-', poolId === undefined ? 'server' : `pool ${poolNames.get(poolId) ?? poolId}`, pollingOf(p), formatTimestamp(a['created-at'])];
          }),
        ),
      );
    });

  provider
    .command('show')
    .description('Show one provider (never its token, SSH key or webhook secret)')
    .argument('<provider>', 'provider name or id (vcs-…)')
    .addHelpText('after', '\nExample:\n  outpost vcs provider show github')
    .action(async (name, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findVcsProvider(api, org, name);
      if (out.json) return out.data(found);
      out.fields(await providerFields(api, found));
    });

  provider
    .command('update')
    .description('Change the settings of a provider; only those given change')
    .argument('<provider>', 'provider name or id (vcs-…)')
    .option('--name <name>', 'rename it')
    .addOption(settingOptions.httpUrl())
    .addOption(settingOptions.apiUrl())
    .addOption(settingOptions.tokenStdin())
    .addOption(settingOptions.tokenFile())
    .addOption(settingOptions.username())
    .addOption(settingOptions.sshKeyFile())
    .addOption(settingOptions.knownHostsFile())
    .addOption(settingOptions.pool())
    .option('--no-pool', 'reach the provider from the server itself again')
    .addOption(settingOptions.pollInterval())
    .addHelpText('after', `${secretsHelp}

The kind of a provider never changes. Its webhook secret changes only with
\`outpost vcs provider rotate-secret\`.

Examples:
  outpost vcs provider update github --token-stdin < new-token.txt
  outpost vcs provider update gitlab --pool office-git
  outpost vcs provider update internal --poll-interval 300`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findVcsProvider(api, org, name);
      const attributes: VcsProviderUpdate = { ...(options.name === undefined ? {} : { name: options.name }), ...(await providerSettings(cli, api, org, options)) };
      if (Object.keys(attributes).length === 0) {
        throw new UsageError('nothing to change: give at least one of --name, --http-url, --api-url, --token-stdin, --token-file, --username, --ssh-key-file, --known-hosts-file, --pool, --no-pool, --poll-interval');
      }
      const updated = await api.updateVcsProvider(found.id, attributes);
      out.result(updated, () => out.line(`Updated VCS provider ${updated.attributes.name}.`));
    });

  provider
    .command('delete')
    .description('Delete a provider; refused while workspaces are linked to its repositories')
    .argument('<provider>', 'provider name or id (vcs-…)')
    .addHelpText('after', '\nExample:\n  outpost workspace repo remove network && outpost vcs provider delete github')
    .action(async (name, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findVcsProvider(api, org, name);
      await api.deleteVcsProvider(found.id);
      out.result({ id: found.id, type: 'vcs-providers' }, () => out.line(`Deleted VCS provider ${found.attributes.name}.`));
    });

  provider
    .command('rotate-secret')
    .description('Give the provider a new webhook secret (printed once); the old one stays valid for the overlap')
    .argument('<provider>', 'provider name or id (vcs-…)')
    .addOption(new Option('--overlap <duration>', 'how long webhooks signed with the old secret are still accepted (30m, 2h; 0 ends it now)').argParser(overlapSeconds).default(3600, '1h'))
    .addHelpText('after', `
Paste the new secret into the forge's webhook settings within the overlap.

Examples:
  outpost vcs provider rotate-secret github
  SECRET=$(outpost vcs provider rotate-secret github --overlap 10m)`)
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = await findVcsProvider(api, org, name);
      const rotated = await api.rotateVcsWebhookSecret(found.id, options.overlap);
      const until = options.overlap === 0 ? 'the old one is no longer accepted' : `the old one is accepted for ${formatDuration(options.overlap * 1000)} more`;
      printWithSecret(cli, out, rotated, `New webhook secret for VCS provider ${found.attributes.name}; ${until}.`);
    });

  provider
    .command('check')
    .description('Try the provider\'s credentials on a repository (git, and the forge\'s API), through whoever reaches the provider: the server, or a VCS agent of its pool')
    .argument('<provider>', 'provider name or id (vcs-…)')
    .requiredOption('--repository <repository>', 'owner/name (GitHub, Gitea), group/name (GitLab), PROJECT/slug (Bitbucket), or the URL (git)')
    .addHelpText('after', '\nExits 0 when the repository can be read; 3 when the provider refused or could not be reached (the message says why).\n\nExample:\n  outpost vcs provider check gitlab --repository platform/infra')
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const found = (await api.checkVcsRepository((await findVcsProvider(api, org, name)).id, options.repository)).attributes;
      out.result(found, () =>
        out.fields([
          ['Repository', found.repository],
          ['Default branch', found['default-branch'] ?? '(unknown)'],
          ['Branches', String(found.branches)],
          ['Private', found.private === null ? '(unknown)' : found.private ? 'yes' : 'no'],
        ]),
      );
    });

  provider
    .command('deliveries')
    .description('List the webhooks the provider sent, newest first, and what came of each')
    .argument('<provider>', 'provider name or id (vcs-…)')
    .option('--limit <n>', 'how many (1-100)', wholeNumber('--limit', 1, 100), 20)
    .addHelpText('after', '\nExample:\n  outpost vcs provider deliveries github --limit 50')
    .action(async (name, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const list = await api.listVcsDeliveries((await findVcsProvider(api, org, name)).id, options.limit);
      out.result(list, () =>
        out.table(
          ['ID', 'DELIVERY', 'EVENT', 'OUTCOME', 'RECEIVED'],
          list.map((d) => [d.id, d.attributes['delivery-id'], d.attributes.event, d.attributes.outcome, formatTimestamp(d.attributes['received-at'])]),
        ),
      );
    });
}

/** The settings given on the command line, as the API takes them; absent flags are left out, so an update keeps those settings. */
async function providerSettings(cli: Cli, api: OutpostApi, org: string, flags: SettingFlags): Promise<VcsProviderUpdate> {
  const token = flags.tokenStdin === true ? await readStdin(cli, 'the token') : flags.tokenFile === undefined ? undefined : await readSecretFile('--token-file', flags.tokenFile);
  const sshKey = flags.sshKeyFile === undefined ? undefined : await readSecretFile('--ssh-key-file', flags.sshKeyFile, { keepLayout: true });
  const knownHosts = flags.knownHostsFile === undefined ? undefined : await readSecretFile('--known-hosts-file', flags.knownHostsFile, { keepLayout: true });
  for (const secret of [token?.trim(), sshKey?.trim()]) if (secret) cli.secrets.push(secret);
  if (token === '') throw new UsageError('the token is empty');
  let poolId: string | null | undefined;
  if (flags.pool === false) poolId = null;
  else if (typeof flags.pool === 'string') {
    const pool = await findPool(api, org, flags.pool);
    // Servers from before VCS pools send no kind; the server checks anyway.
    if (pool.attributes.kind !== undefined && pool.attributes.kind !== 'vcs') {
      throw new UsageError(`agent pool ${pool.attributes.name} runs jobs; a provider is reached through a pool of kind vcs (outpost pool create NAME --kind vcs)`);
    }
    poolId = pool.id;
  }
  return {
    ...(flags.httpUrl === undefined ? {} : { 'http-url': flags.httpUrl }),
    ...(flags.apiUrl === undefined ? {} : { 'api-url': flags.apiUrl }),
    ...(token === undefined ? {} : { token }),
    ...(flags.username === undefined ? {} : { username: flags.username }),
    ...(sshKey === undefined ? {} : { 'ssh-key': sshKey }),
    ...(knownHosts === undefined ? {} : { 'known-hosts': knownHosts }),
    ...(poolId === undefined ? {} : { 'agent-pool-id': poolId }),
    ...(flags.pollInterval === undefined ? {} : { 'poll-interval': flags.pollInterval }),
  };
}

/** The whole of stdin, without surrounding blank space (what `echo` and editors add): a token has none. */
async function readStdin(cli: Cli, what: string): Promise<string> {
  const stdin: InputStream = cli.deps.terminal.stdin;
  if (stdin.isTTY === true) cli.deps.terminal.stderr.write(`Paste ${what}, then press Enter and Ctrl-D:\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** A token file loses its surrounding blank space; a key or known_hosts file is sent as it is (OpenSSH wants the final newline). */
async function readSecretFile(flag: string, file: string, options: { keepLayout?: boolean } = {}): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag} ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (text.trim() === '') throw new UsageError(`${flag} ${file}: the file is empty`);
  return options.keepLayout === true ? text : text.trim();
}

// What to set in each forge's webhook form, in the forge's own words.
const webhookFormHints: Readonly<Record<Exclude<VcsProviderKind, 'git'>, string>> = {
  github: 'GitHub (Settings > Webhooks): Payload URL, content type application/json, Secret; events "Pushes" and "Pull requests".',
  gitea: 'Gitea (Settings > Webhooks > Gitea): Target URL, POST content type application/json, Secret; events "Push" and "Pull Request".',
  gitlab: 'GitLab (Settings > Webhooks): URL, Secret token; triggers "Push events", "Tag push events" and "Merge request events".',
  'bitbucket-dc': 'Bitbucket (Repository settings > Webhooks): URL, Secret; events "Repository: Push", "Pull request: Opened" and "Source branch updated".',
};

/** A provider whose answer carries its webhook secret: the secret alone on stdout, everything else on stderr. */
function printWithSecret(cli: Cli, out: Output, saved: VcsProvider, title: string): void {
  const a = saved.attributes;
  const secret = a['webhook-secret'];
  if (secret) cli.secrets.push(secret);
  if (out.json) return out.data(saved);
  // A plain git server sends no webhooks: its secret would be of no use to anyone.
  if (a.kind === 'git' || !secret) {
    out.line(title);
    out.note(`It is polled ${a['poll-interval'] > 0 ? `every ${formatDuration(a['poll-interval'] * 1000)}` : 'never (--poll-interval 0): nothing will start runs'}.`);
    return;
  }
  out.note(title);
  out.note('');
  out.note(`Webhook URL:    ${webhookUrlOf(saved)}`);
  out.note('Webhook secret:');
  out.line(secret);
  out.note('');
  out.note('WARNING: copy this webhook secret now. It will not be shown again.');
  out.note('Paste the URL and the secret into the webhook settings of each repository (or group) whose pushes should start runs:');
  out.note(`  ${webhookFormHints[a.kind]}`);
  if (relatedId(saved, 'agent-pool') !== undefined) {
    out.note('The forge is reached through a VCS pool: its webhooks go to the listener of one of the pool\'s agents');
    out.note('(OUTPOST_AGENT_VCS_WEBHOOK_PORT), which forwards them to the server.');
  }
}

function webhookUrlOf(provider: VcsProvider): string {
  const url = provider.attributes['webhook-url'];
  if (url) return url;
  if (relatedId(provider, 'agent-pool') !== undefined) return `http://<VCS agent>:<OUTPOST_AGENT_VCS_WEBHOOK_PORT>/webhooks/${provider.id}`;
  return '-';
}

function pollingOf(provider: VcsProvider): string {
  const seconds = provider.attributes['poll-interval'];
  return seconds > 0 ? `every ${formatDuration(seconds * 1000)}` : 'off';
}

async function providerFields(api: OutpostApi, provider: VcsProvider): Promise<[string, string][]> {
  const a = provider.attributes;
  const poolId = relatedId(provider, 'agent-pool');
  const poolName = poolId === undefined ? undefined : (await api.getPool(poolId)).attributes.name;
  return [
    ['ID', provider.id],
    ['Name', a.name],
    ['Kind', a.kind],
    ['URL', a['http-url'] ?? '-'],
    ['API URL', a['api-url'] ?? '(derived from the URL)'],
    ['Token', a['has-token'] ? 'set' : 'not set'],
    ...(a.kind === 'git' ? [['SSH key', a['has-ssh-key'] ? 'set' : 'not set'] as [string, string]] : []),
    ['Reached by', poolId === undefined ? 'the server' : `agent pool ${poolName} (${poolId})`],
    ['Polling', pollingOf(provider)],
    ['Webhook URL', a.kind === 'git' ? '- (plain git sends no webhooks)' : webhookUrlOf(provider)],
    ['Created', formatTimestamp(a['created-at'])],
  ];
}
