// What every command needs from outside: the terminal, the environment, a
// way to build an API client, and process-level hooks (Ctrl-C, exit). main.ts
// passes the real ones; tests pass fakes, so a whole command line can be
// parsed and run without a server or a process to kill.
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { Env } from '../config/settings.ts';
import type { OutpostApi } from './api-client.ts';
import { resolveApiSettings, type ApiFlags, type ApiSettings } from './config.ts';
import { Output, type Terminal } from './output.ts';

/** The long-running commands, implemented outside src/cli; each resolves to an exit code. */
export interface ProcessCommands {
  readonly server: () => Promise<number>;
  readonly agent: () => Promise<number>;
  readonly job: () => Promise<number>;
  readonly quickstart: () => Promise<number>;
  readonly launcher: () => Promise<number>;
  readonly engineBuild: (request: { version: string; dir?: string | undefined; go?: string | undefined }) => Promise<number>;
}

export interface CliDeps {
  readonly terminal: Terminal;
  /** Undefined: the process environment (read in config.ts). */
  readonly env?: Env;
  readonly createApi: (settings: ApiSettings) => OutpostApi;
  /** Calls listener on each Ctrl-C until the returned function is called. */
  readonly onInterrupt: (listener: () => void) => () => void;
  /** Ends the process at once (the second Ctrl-C does not wait for anything). */
  readonly exit: (code: number) => void;
  readonly processes: ProcessCommands;
}

/** One CLI invocation: its dependencies, the exit code actions set, and secrets to keep out of messages. */
export interface Cli {
  readonly deps: CliDeps;
  exitCode: number;
  readonly secrets: string[];
}

export interface ApiContext {
  readonly api: OutpostApi;
  readonly org: string;
  readonly out: Output;
  readonly settings: ApiSettings;
}

interface GlobalFlags extends ApiFlags {
  readonly json?: boolean;
}

function globalFlags(command: CommandUnknownOpts): GlobalFlags {
  const all = command.optsWithGlobals();
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  return { url: text(all.url), token: text(all.token), org: text(all.org), json: all.json === true };
}

export function outputFor(cli: Cli, command: CommandUnknownOpts): Output {
  return new Output(cli.deps.terminal, globalFlags(command).json === true);
}

/** Settings, client and output for an API command; fails with a usage error when no token is set. */
export function apiContext(cli: Cli, command: CommandUnknownOpts): ApiContext {
  const flags = globalFlags(command);
  const settings = resolveApiSettings(flags, cli.deps.env);
  cli.secrets.push(settings.token);
  return { api: cli.deps.createApi(settings), org: settings.org, out: outputFor(cli, command), settings };
}
