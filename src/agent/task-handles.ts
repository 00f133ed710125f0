// Persisted driver handles, one file per running job under the data dir, so
// an agent that restarts finds the sandboxes its previous process left and
// recovers or removes them (design.md §5: recover from a versioned handle).
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TaskHandle } from './drivers/driver.ts';

export class TaskHandleStore {
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = path.join(dataDir, 'tasks');
  }

  async save(handle: TaskHandle): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.#dir, `${handle.jobId}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(handle), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  async remove(jobId: string): Promise<void> {
    await rm(path.join(this.#dir, `${jobId}.json`), { force: true });
  }

  /** Handles left by a previous agent process; unreadable or unknown-version files are dropped. */
  async list(): Promise<TaskHandle[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return [];
    }
    const handles: TaskHandle[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        const handle = JSON.parse(await readFile(path.join(this.#dir, name), 'utf8')) as TaskHandle;
        if (handle.version === 1 && typeof handle.jobId === 'string') handles.push(handle);
        else await rm(path.join(this.#dir, name), { force: true });
      } catch {
        await rm(path.join(this.#dir, name), { force: true });
      }
    }
    return handles;
  }
}
