// What an agent that starts finds of its previous process (it crashed, was
// killed, or the host restarted) in the data dir. Each job it was running
// left a record (task-handles.ts): when the driver can re-attach to that
// job's sandbox, the sandbox is recovered, for the agent to take the job
// back once the control plane confirms it still holds the lease; otherwise
// the sandbox is removed and the job reported lost. Sandboxes no record
// accounts for (a crash between creating one and recording it) and the job
// directories of everything not recovered are removed: nothing of a job that
// nobody follows may keep running.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AgentConfig } from './config.ts';
import type { Driver, RunningTask } from './drivers/driver.ts';
import { isRecoverable, type PersistedTask, type RecoverableTask, type TaskHandleStore } from './task-handles.ts';

export interface RecoveredTask {
  readonly task: RecoverableTask;
  readonly running: RunningTask;
}

export interface Leftovers {
  /** Sandboxes the driver re-attached to; their jobs are not the agent's until the control plane says so. */
  readonly recovered: RecoveredTask[];
  /** Jobs whose sandbox was removed: to report lost. */
  readonly lost: PersistedTask[];
}

type LeftoverDeps = { readonly config: AgentConfig; readonly driver: Driver; readonly handles: TaskHandleStore; readonly logger: Logger };

export async function sortLeftovers(deps: LeftoverDeps): Promise<Leftovers> {
  const { driver, handles, logger, config } = deps;
  const left = await handles.list();
  const recovered: RecoveredTask[] = [];
  const lost: PersistedTask[] = [];
  for (const task of left) {
    const running = driver.capabilities().recover && isRecoverable(task) ? await recover(deps, task) : undefined;
    if (running && isRecoverable(task)) {
      recovered.push({ task, running });
      logger.info({ job: task.jobId, driver: task.driver }, 're-attached to the sandbox of a job the previous agent process was running');
      continue;
    }
    lost.push(task);
    await removeLeftover(deps, task);
  }
  const orphans = await driver.removeOrphans(new Set(left.map((task) => task.jobId))).catch(() => 0);
  if (orphans > 0) logger.warn({ count: orphans }, 'removed sandboxes no job owns');
  // Job directories and log spill files (`<job id>.log-spill`): only recovered sandboxes still use their directory.
  let elsewhere: ReadonlySet<string> | undefined;
  try {
    elsewhere = await driver.jobsInUseElsewhere?.();
  } catch (error) {
    // Which directories other sandboxes mount is unknown: keep them all for a later start.
    logger.warn({ err: (error as Error).message }, 'could not tell which job directories are in use; leaving them');
    return { recovered, lost };
  }
  const keep = new Set([...recovered.map(({ task }) => path.basename(task.workdir)), ...(elsewhere ?? [])]);
  const jobsDir = path.join(config.dataDir, 'jobs');
  for (const name of await readdir(jobsDir).catch(() => [] as string[])) {
    if (!keep.has(name)) await rm(path.join(jobsDir, name), { recursive: true, force: true });
  }
  return { recovered, lost };
}

/** Removes the sandbox of a job the agent does not take back, and its record. */
export async function removeLeftover(deps: LeftoverDeps, task: PersistedTask): Promise<void> {
  const { driver, handles, logger } = deps;
  await driver.destroy(task).catch((error: unknown) => logger.warn({ err: error, job: task.jobId }, 'could not remove a leftover sandbox'));
  await handles.remove(task.jobId);
  logger.warn({ job: task.jobId, driver: task.driver }, 'removed the sandbox of a job the previous agent process left running');
}

async function recover(deps: LeftoverDeps, task: RecoverableTask): Promise<RunningTask | undefined> {
  try {
    return await deps.driver.recover(task);
  } catch (error) {
    deps.logger.warn({ err: (error as Error).message, job: task.jobId }, 'could not re-attach to the sandbox of a job the previous agent process was running');
    return undefined;
  }
}
