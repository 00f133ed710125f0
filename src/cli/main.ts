// Entry point of the `outpost` command (bin/outpost.js imports this file).
// The only place that touches the real process: its streams, signals and
// exit code. Everything else is in program.ts, which tests drive directly.
import { ApiClient } from './api-client.ts';
import { runCli } from './program.ts';

// A reader that stops early (`outpost run list | head`) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  terminal: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
  createApi: (settings) => new ApiClient({ url: settings.url, token: settings.token, userAgent: 'outpost-cli' }),
  onInterrupt: (listener) => {
    process.on('SIGINT', listener);
    return () => process.off('SIGINT', listener);
  },
  exit: (code) => process.exit(code),
  // Loaded only for the command that runs: an agent process never loads the
  // server's web framework and database drivers, nor the server the agent's.
  processes: {
    server: async () => (await import('../server/main.ts')).runServerCommand(),
    agent: async () => (await import('../agent/main.ts')).runAgentCommand(),
    job: async () => (await import('../job/main.ts')).runJobCommand(),
    quickstart: async () => (await import('./quickstart.ts')).runQuickstartCommand(),
    launcher: async () => (await import('../launcher/main.ts')).runLauncherCommand(),
    engineBuild: async (request) => (await import('../agent/engines/build-command.ts')).runEngineBuildCommand(request),
  },
});
