// `outpost server`, `outpost job`, `outpost quickstart`: the long-running
// (or sandboxed) processes. Each is implemented in its own part of the tree;
// here they only get a name, a help text and their exit code.
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { Cli } from '../command-context.ts';
import { environmentConfiguredHelp } from './process-help.ts';

export function registerLocalProcessCommands(program: CommandUnknownOpts, cli: Cli): void {
  program
    .command('quickstart')
    .description('Start a local server and agent to try Outpost (what `npm start` runs)')
    .configureHelp({ showGlobalOptions: false })
    .addHelpText('after', environmentConfiguredHelp(['npm start', 'outpost quickstart']))
    .action(async () => {
      cli.exitCode = await cli.deps.processes.quickstart();
    });

  program
    .command('server')
    .description('Run the control plane: the HTTP API, the job queue, state and logs')
    .configureHelp({ showGlobalOptions: false })
    .addHelpText(
      'after',
      environmentConfiguredHelp([
        'outpost server',
        'OUTPOST_LISTEN=0.0.0.0:8480 OUTPOST_DATABASE_URL=postgres://outpost@db/outpost outpost server',
      ]) + '\n\nOn first start the server creates the `default` organization and prints an admin\ntoken (opa_…); use it as OUTPOST_TOKEN for the other commands.',
    )
    .action(async () => {
      cli.exitCode = await cli.deps.processes.server();
    });
}

export function registerLauncherCommand(program: CommandUnknownOpts, cli: Cli): void {
  program
    .command('launcher')
    .description('Receive a serverless pool\'s webhook and start a single-run agent per job (Docker container or Kubernetes Job)')
    .configureHelp({ showGlobalOptions: false })
    .addHelpText(
      'after',
      environmentConfiguredHelp([
        'OUTPOST_LAUNCHER_SIGNING_SECRET=opw_… OUTPOST_AGENT_TOKEN=opp_… outpost launcher',
        'OUTPOST_LAUNCHER_TARGET=kubernetes OUTPOST_LAUNCHER_TOKEN_SECRET=outpost-pool-token OUTPOST_LAUNCHER_SIGNING_SECRET_FILE=/etc/outpost/signing-secret outpost launcher',
      ]) + '\n\nPoint the pool\'s webhook at it: outpost pool webhook set <pool> http://<launcher>:8490/webhook\nSee docs/serverless.md.',
    )
    .action(async () => {
      cli.exitCode = await cli.deps.processes.launcher();
    });
}

/** Listed last in the help: users never run it by hand. */
export function registerJobCommand(program: CommandUnknownOpts, cli: Cli): void {
  program
    .command('job')
    .description('Run one job (a plan or an apply) inside a sandbox; started by an agent, not by hand')
    .configureHelp({ showGlobalOptions: false })
    .addHelpText(
      'after',
      environmentConfiguredHelp(['outpost job    (run by an agent\'s driver, with the job\'s settings in its environment)']),
    )
    .action(async () => {
      cli.exitCode = await cli.deps.processes.job();
    });
}
