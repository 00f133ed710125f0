// Persisted driver handles, one file per running job under the data dir, so
// an agent that restarts finds the sandboxes its previous process left and
// recovers or removes them (the handle is versioned: TaskHandle in drivers/driver.ts).
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TaskHandle } from './drivers/driver.ts';

export type PersistedTask = TaskHandle & { leaseId: string };

export class TaskHandleStore {
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = path.join(dataDir, 'tasks');
  }

  /** The lease is kept too: a restarted agent reports the job lost with it. */
  async save(handle: TaskHandle, leaseId: string): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.#dir, `${handle.jobId}.json`);
    const record: PersistedTask = { ...handle, leaseId };
    await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  async remove(jobId: string): Promise<void> {
    await rm(path.join(this.#dir, `${jobId}.json`), { force: true });
  }

  /** Handles left by a previous agent process; unreadable or unknown-version files are dropped. */
  async list(): Promise<PersistedTask[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return [];
    }
    const handles: PersistedTask[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        const handle = JSON.parse(await readFile(path.join(this.#dir, name), 'utf8')) as PersistedTask;
        if (handle.version === 1 && typeof handle.jobId === 'string' && typeof handle.leaseId === 'string') handles.push(handle);
        else await rm(path.join(this.#dir, name), { force: true });
      } catch {
        await rm(path.join(this.#dir, name), { force: true });
      }
    }
    return handles;
  }
}
