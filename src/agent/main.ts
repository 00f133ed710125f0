// `outpost agent run`: the agent.
export async function runAgentCommand(): Promise<number> {
  throw new Error('not implemented yet');
}
