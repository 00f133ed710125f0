// The `outpost` command line: the program and the run of one invocation.
// buildProgram() only declares commands; runCli() parses, runs the chosen
// action and turns its outcome (or error) into an exit code. Both take their
// dependencies as arguments so tests can drive any command line with fakes.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from '@commander-js/extra-typings';
import { ApiError } from './api-error.ts';
import type { Cli, CliDeps } from './command-context.ts';
import { registerAgentCommands } from './commands/agent.ts';
import { registerEngineCommands } from './commands/engine.ts';
import { registerPoolCommands } from './commands/pool.ts';
import { registerJobCommand, registerLauncherCommand, registerLocalProcessCommands } from './commands/processes.ts';
import { registerRunCommands } from './commands/run.ts';
import { registerStateCommands } from './commands/state.ts';
import { registerVariableCommands } from './commands/variable.ts';
import { registerVcsCommands } from './commands/vcs.ts';
import { registerWorkspaceCommands } from './commands/workspace.ts';
import { exitCodeFor, exitCodes, formatError } from './exit-codes.ts';

// Read, not imported: the build compiles src/ alone (tsconfig.build.json),
// and dist/cli/ is as deep as src/cli/, so this path holds from either.
const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(cli: Cli): Command {
  const { stdout, stderr } = cli.deps.terminal;
  const program = new Command('outpost')
    .description('Run OpenTofu and Terraform on your own infrastructure: the control plane, its agents, and this client.')
    .version(packageJson.version, '-V, --version')
    // Global options are accepted before or after the subcommand
    // (`outpost --json pool list` and `outpost pool list --json`).
    .option('--url <url>', 'Outpost server URL [env: OUTPOST_URL] (default: http://127.0.0.1:8480)')
    .option('--token <token>', 'API token [env: OUTPOST_TOKEN]; prefer the variable, flags show in process lists')
    .option('--org <name>', 'organization [env: OUTPOST_ORG] (default: default)')
    .option('--json', 'print the API\'s JSON:API data instead of text')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({ writeOut: (text) => void stdout.write(text), writeErr: (text) => void stderr.write(text) })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  program.addHelpText('after', `
Getting started:
  outpost server                                 start the control plane (prints an admin token)
  export OUTPOST_TOKEN=opa_…
  outpost pool create default-pool
  outpost pool token create default-pool         then: OUTPOST_AGENT_TOKEN=… outpost agent run
  outpost workspace create network --pool default-pool
  outpost run ./network --workspace network

Documentation: docs/cli.md (commands, exit codes), docs/configuration.md (environment).`);

  registerLocalProcessCommands(program, cli);
  registerLauncherCommand(program, cli);
  registerAgentCommands(program, cli);
  registerPoolCommands(program, cli);
  registerWorkspaceCommands(program, cli);
  registerVcsCommands(program, cli);
  registerVariableCommands(program, cli);
  registerRunCommands(program, cli);
  registerStateCommands(program, cli);
  registerEngineCommands(program, cli);
  registerJobCommand(program, cli);
  return program;
}

/** Runs one command line (without the `node outpost` prefix) and returns its exit code. */
export async function runCli(args: readonly string[], deps: CliDeps): Promise<number> {
  const cli: Cli = { deps, exitCode: exitCodes.success, secrets: [] };
  const program = buildProgram(cli);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return cli.exitCode;
  } catch (error) {
    // Commander has already printed its own message (usage errors) or help.
    if (!(error instanceof CommanderError)) reportError(cli, error);
    return exitCodeFor(error);
  }
}

function reportError(cli: Cli, error: unknown): void {
  const { stderr } = cli.deps.terminal;
  stderr.write(`${formatError(error, cli.secrets)}\n`);
  if (error instanceof ApiError && error.isAuthFailure) {
    stderr.write('Check the token (OUTPOST_TOKEN or --token) and the server (OUTPOST_URL or --url).\n');
  }
}
