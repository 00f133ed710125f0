// `outpost agent …`: run an agent, or list the agents registered in pools.
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { Agent, Pool } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { findPool } from '../resource-lookup.ts';
import { formatAge } from '../table.ts';
import { environmentConfiguredHelp } from './process-help.ts';

export function registerAgentCommands(program: CommandUnknownOpts, cli: Cli): void {
  const agent = program.command('agent').description('Run an agent, or list agents');

  agent
    .command('run')
    .description('Run an agent: join a pool with a pool token, then claim and run its jobs')
    .configureHelp({ showGlobalOptions: false })
    .addHelpText(
      'after',
      environmentConfiguredHelp([
        'OUTPOST_URL=https://outpost.example.com OUTPOST_AGENT_TOKEN=opp_… outpost agent run',
        'OUTPOST_AGENT_TOKEN=opp_… OUTPOST_AGENT_CONCURRENCY=4 outpost agent run',
      ]),
    )
    .action(async () => {
      cli.exitCode = await cli.deps.processes.agent();
    });

  agent
    .command('list')
    .description('List agents with their status and running jobs')
    .option('--pool <pool>', 'only agents of this pool (name or apool- id); default: every pool')
    .addHelpText('after', '\nExamples:\n  outpost agent list\n  outpost agent list --pool production --json')
    .action(async (options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const pools: Pool[] = options.pool === undefined ? await api.listPools(org) : [await findPool(api, org, options.pool)];
      const perPool = await Promise.all(pools.map(async (pool) => ({ pool, agents: await api.listAgents(pool.id) })));
      const agents = perPool.flatMap(({ agents: list }) => list);
      out.result(agents, () =>
        out.table(
          ['ID', 'NAME', 'POOL', 'STATUS', 'JOBS', 'VERSION', 'DRIVER', 'LAST PING'],
          perPool.flatMap(({ pool, agents: list }) => list.map((a) => agentRow(a, pool))),
        ),
      );
    });
}

function agentRow(agent: Agent, pool: Pool): string[] {
  const a = agent.attributes;
  return [
    agent.id,
    a.name,
    pool.attributes.name,
    a.status,
    `${a['running-jobs']}/${a.concurrency}`,
    a.version,
    a.driver,
    formatAge(a['last-ping-at']),
  ];
}
