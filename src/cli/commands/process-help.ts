// Help text shared by the long-running commands (server, agent run, job,
// quickstart). They are configured by environment variables, not flags: the
// same variables work in a shell, a systemd unit, a container and a Helm
// chart, and secrets stay out of process listings.

export function environmentConfiguredHelp(examples: readonly string[]): string {
  return `
Configuration: environment variables, not flags. Every variable, its default
and its aliases are listed in docs/configuration.md.

Examples:
${examples.map((example) => `  ${example}`).join('\n')}`;
}
