// `outpost engine build`: an OpenTofu binary built from its Go module, for
// machines that cannot download the release (the agent does the same on its
// own when it needs a version it cannot download).
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { Cli } from '../command-context.ts';

/** What new workspaces get unless the server says otherwise (OUTPOST_DEFAULT_ENGINE_VERSION). */
const defaultVersion = '1.10.10';

export function registerEngineCommands(program: CommandUnknownOpts, cli: Cli): void {
  const engine = program.command('engine').description('Engine binaries on this machine');
  engine
    .command('build')
    .description('Build an OpenTofu version from its Go module (needs Go 1.24 or newer and the Go module proxy)')
    .argument('[version]', 'OpenTofu version', defaultVersion)
    .option('--dir <path>', 'where to put it [env: OUTPOST_AGENT_ENGINE_BUILD_DIR] (default: ~/.cache/outpost)')
    .option('--go <path>', 'the go binary [env: OUTPOST_AGENT_GO] (default: go1.24+ on PATH or in /usr/local/go/bin)')
    .configureHelp({ showGlobalOptions: false })
    .addHelpText(
      'after',
      `
Prints progress on stderr (a line at least every 10 s) and the binary's path on
stdout. A binary already built is reused. Agents use binaries built here when
they cannot download a release, and build one themselves when Go is at hand
(OUTPOST_AGENT_ENGINE_BUILD=auto). See docs/caches.md.

Exit codes: 0 built (or already there); 1 the build failed or no Go was found;
2 an invalid version or setting.

Examples:
  outpost engine build
  outpost engine build 1.9.1 --dir /opt/outpost/engines`,
    )
    .action(async (version: string, options: { dir?: string; go?: string }) => {
      cli.exitCode = await cli.deps.processes.engineBuild({ version, dir: options.dir, go: options.go });
    });
}
