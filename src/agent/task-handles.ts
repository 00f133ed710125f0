// What the agent keeps of each running job in its data dir, one file per
// job under tasks/, so that an agent that restarts finds the sandboxes its
// previous process left: the driver's handle (versioned: TaskHandle in
// drivers/driver.ts) and the lease, to report the job lost; and, for a
// driver that can recover sandboxes, what the agent needs to take the job
// back: which job it is, where its lines sit in the log (job-log.ts), and
// what stopped it, if anything did (job-end.ts).
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JobKind } from '../protocol/statuses.ts';
import type { TaskHandle } from './drivers/driver.ts';
import type { StopCause } from './job-end.ts';
import type { LogLedger } from './job-log.ts';

export interface PersistedTask extends TaskHandle {
  leaseId: string;
  /** Absent in a record an older agent wrote: such a job cannot be taken back, only reported lost. */
  runId?: string;
  jobKind?: JobKind;
  log?: LogLedger;
  stop?: StopCause;
}

/** A task with everything a restarted agent needs to take its job back. */
export type RecoverableTask = PersistedTask & Required<Pick<PersistedTask, 'runId' | 'jobKind' | 'log'>>;

export function isRecoverable(task: PersistedTask): task is RecoverableTask {
  return typeof task.runId === 'string' && (task.jobKind === 'plan' || task.jobKind === 'apply') && typeof task.log?.base === 'number' && Array.isArray(task.log.lines);
}

export class TaskHandleStore {
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = path.join(dataDir, 'tasks');
  }

  /** Written whole and renamed into place, so a crash leaves the old record or the new one. */
  async save(task: PersistedTask): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.#dir, `${task.jobId}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(task), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  async remove(jobId: string): Promise<void> {
    await rm(path.join(this.#dir, `${jobId}.json`), { force: true });
  }

  /** Tasks left by a previous agent process; unreadable or unknown-version files are dropped. */
  async list(): Promise<PersistedTask[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return [];
    }
    const tasks: PersistedTask[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        const task = JSON.parse(await readFile(path.join(this.#dir, name), 'utf8')) as PersistedTask;
        if (task.version === 1 && typeof task.jobId === 'string' && typeof task.leaseId === 'string') tasks.push(task);
        else await rm(path.join(this.#dir, name), { force: true });
      } catch {
        await rm(path.join(this.#dir, name), { force: true });
      }
    }
    return tasks;
  }
}
