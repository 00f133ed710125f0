// `outpost pool webhook …` and `outpost pool deliveries`: a serverless
// pool's webhook (docs/serverless.md) and what it was sent.
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { PoolWebhook, PoolWebhookInput, WebhookDelivery } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { exitCodes, UsageError } from '../exit-codes.ts';
import { findPool } from '../resource-lookup.ts';
import { formatTimestamp } from '../table.ts';

function parseHeader(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new UsageError(`--header ${value}: expected NAME=VALUE`);
  return { ...previous, [value.slice(0, at).trim()]: value.slice(at + 1) };
}

function parsePositive(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new UsageError(`${flag} ${value}: expected a whole number`);
    return Number(value);
  };
}

export function registerPoolWebhookCommands(pool: CommandUnknownOpts, cli: Cli): void {
  const webhook = pool
    .command('webhook')
    .description('Make a pool serverless: a webhook starts an agent for each job no agent can take')
    .addHelpText('after', `
When a job of the pool is queued and no connected agent has a free slot, the
control plane POSTs a signed delivery to the webhook; the receiver (the AWS
Lambda of deploy/aws, or \`outpost launcher\`) starts a single-run agent for
that job. See docs/serverless.md.

Examples:
  outpost pool webhook set serverless https://abc.execute-api.eu-west-1.amazonaws.com/webhook
  outpost pool webhook test serverless
  outpost pool deliveries serverless`);

  webhook
    .command('set')
    .description('Create or change the pool\'s webhook; a new one prints its signing secret (shown only this once)')
    .argument('<pool>', 'pool name or id (apool-…)')
    .argument('[url]', 'where deliveries are POSTed (http:// or https://); required the first time')
    .option('--header <name=value>', 'a custom header sent with every delivery (repeatable; replaces all; values are stored sealed and never shown)', parseHeader)
    .option('--no-headers', 'remove every custom header')
    .addOption(new Option('--enable', 'send deliveries (the default for a new webhook)').conflicts('disable'))
    .option('--disable', 'stop sending deliveries; jobs wait for agents as in any pool')
    .option('--deliveries-per-minute <n>', 'at most this many deliveries a minute (default 60)', parsePositive('--deliveries-per-minute'))
    .option('--claim-timeout <seconds>', 'a job no agent claimed this long after its delivery errors (default 600)', parsePositive('--claim-timeout'))
    .addHelpText('after', `
The signing secret is the only thing written to stdout for a new webhook:
  SECRET=$(outpost pool webhook set serverless https://hooks.example.com/outpost)`)
    .action(async (poolName, url, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const target = await findPool(api, org, poolName);
      const attributes: PoolWebhookInput = {
        ...(url === undefined ? {} : { url }),
        ...(options.headers === false ? { headers: {} } : typeof options.header === 'object' ? { headers: options.header } : {}),
        ...(options.enable ? { enabled: true } : options.disable ? { enabled: false } : {}),
        ...(options.deliveriesPerMinute === undefined ? {} : { 'deliveries-per-minute': options.deliveriesPerMinute }),
        ...(options.claimTimeout === undefined ? {} : { 'claim-timeout-seconds': options.claimTimeout }),
      };
      const saved = await api.setWebhook(target.id, attributes);
      printWebhook(cli, out, saved, `Webhook of agent pool ${target.attributes.name} saved.`);
    });

  webhook
    .command('show')
    .description('Show the pool\'s webhook (never its secret or header values)')
    .argument('<pool>', 'pool name or id (apool-…)')
    .action(async (poolName, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const saved = await api.getWebhook((await findPool(api, org, poolName)).id);
      out.result(saved, () => out.fields(webhookFields(saved)));
    });

  webhook
    .command('rotate-secret')
    .description('Give the webhook a new signing secret (printed once); the old one stays valid for the overlap')
    .argument('<pool>', 'pool name or id (apool-…)')
    .option('--overlap <seconds>', 'how long deliveries are also signed with the old secret (default 86400; 0 ends it now)', parsePositive('--overlap'), 86_400)
    .action(async (poolName, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const target = await findPool(api, org, poolName);
      const rotated = await api.rotateWebhookSecret(target.id, options.overlap);
      printWebhook(cli, out, rotated, `New signing secret for the webhook of agent pool ${target.attributes.name}.`);
    });

  webhook
    .command('test')
    .description('Send a test delivery (event `ping`) now and show what the receiver answered; exits 1 if it did not accept it')
    .argument('<pool>', 'pool name or id (apool-…)')
    .action(async (poolName, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const delivery = await api.testWebhook((await findPool(api, org, poolName)).id);
      out.result(delivery, () => out.fields(deliveryFields(delivery)));
      if (delivery.attributes.status !== 'delivered') cli.exitCode = exitCodes.failed;
    });

  webhook
    .command('remove')
    .description('Remove the pool\'s webhook: its jobs wait for agents as in any pool')
    .argument('<pool>', 'pool name or id (apool-…)')
    .action(async (poolName, _options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const target = await findPool(api, org, poolName);
      await api.removeWebhook(target.id);
      out.result({ id: target.id, type: 'pool-webhooks' }, () => out.line(`Removed the webhook of agent pool ${target.attributes.name}.`));
    });

  pool
    .command('deliveries')
    .description('List the webhook deliveries of a pool, newest first')
    .argument('<pool>', 'pool name or id (apool-…)')
    .option('--limit <n>', 'how many (1-100)', parsePositive('--limit'), 20)
    .addHelpText('after', '\nExample:\n  outpost pool deliveries serverless --limit 50')
    .action(async (poolName, options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const list = await api.listWebhookDeliveries((await findPool(api, org, poolName)).id, options.limit);
      out.result(list, () =>
        out.table(
          ['ID', 'EVENT', 'JOB', 'STATUS', 'ATTEMPTS', 'ANSWER', 'LATENCY', 'CREATED'],
          list.map((d) => {
            const a = d.attributes;
            const job = d.relationships?.job?.data;
            return [d.id, a.event, job && !Array.isArray(job) ? job.id : '-', a.status, String(a.attempts), answerOf(d), a['latency-ms'] === null ? '-' : `${a['latency-ms']} ms`, formatTimestamp(a['created-at'])];
          }),
        ),
      );
    });
}

function printWebhook(cli: Cli, out: ReturnType<typeof apiContext>['out'], saved: PoolWebhook, title: string): void {
  const secret = saved.attributes['signing-secret'];
  if (secret) cli.secrets.push(secret);
  if (out.json) return out.data(saved);
  out.note(title);
  if (!secret) return out.fields(webhookFields(saved));
  // The secret is stdout's only line, so that $(…) captures it; the rest goes to stderr.
  for (const [name, value] of webhookFields(saved)) out.note(`${name}: ${value}`);
  out.note('');
  out.line(secret);
  out.note('');
  out.note('WARNING: copy this signing secret now. It will not be shown again.');
  out.note('Give it to the receiver: the module in deploy/aws (signing_secret) or `outpost launcher` (OUTPOST_LAUNCHER_SIGNING_SECRET).');
}

function webhookFields(saved: PoolWebhook): [string, string][] {
  const a = saved.attributes;
  return [
    ['URL', a.url],
    ['Enabled', a.enabled ? 'yes' : 'no'],
    ['Headers', a.headers.length === 0 ? '-' : a.headers.join(', ')],
    ['Deliveries a minute', String(a['deliveries-per-minute'])],
    ['Claim timeout', `${a['claim-timeout-seconds']} s`],
    ['Previous secret valid until', a['previous-secret-expires-at'] ? formatTimestamp(a['previous-secret-expires-at']) : '-'],
  ];
}

function answerOf(delivery: WebhookDelivery): string {
  const a = delivery.attributes;
  return a['response-status'] !== null ? `HTTP ${a['response-status']}` : (a.error ?? '-');
}

function deliveryFields(delivery: WebhookDelivery): [string, string][] {
  const a = delivery.attributes;
  return [
    ['Delivery', delivery.id],
    ['Status', a.status],
    ['Answer', answerOf(delivery)],
    ['Latency', a['latency-ms'] === null ? '-' : `${a['latency-ms']} ms`],
    ['Body', a['response-excerpt'] ?? '-'],
  ];
}
