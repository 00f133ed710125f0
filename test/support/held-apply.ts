// An apply held where a test needs it: its provisioner sleeps (a command the
// test can find and whose leftovers are killed after it), so the test can
// cancel, kill, stop or partition while the engine is mid-apply.
import type { AgentHandle, TestHooks } from './cluster.ts';
import { createRun, uploadConfiguration, type Run } from './api-calls.ts';
import type { Cluster } from './test-cluster.ts';
import { jobDirectoryPattern, killLeftoversAfter, sleepingCommand, waitForSleepingProvisioner, type SleepingCommand } from './job-control.ts';

/** A sleeping command for `agent`'s jobs; what it and the agent's jobs leave running is killed after the test. */
export function heldCommand(t: TestHooks, agent: AgentHandle): SleepingCommand {
  const command = sleepingCommand();
  killLeftoversAfter(t, () => `${jobDirectoryPattern(agent)}|${command.pattern}`);
  return command;
}

/** Queues a run of `files` and returns once its apply's provisioner (running `command`) sleeps. */
export async function startHeldApply(cluster: Cluster, files: Record<string, string>, command: SleepingCommand, workspaceId = cluster.workspace.id): Promise<Run> {
  const run = await createRun(cluster.server, workspaceId, await uploadConfiguration(cluster.server, workspaceId, files));
  await cluster.waitForRun(run.id, ['applying']);
  await waitForSleepingProvisioner(command, run.id, () => cluster.diagnostics(run.id));
  return run;
}
