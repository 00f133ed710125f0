// Makes the agent's files (the Node runtime, Outpost's code, an engine
// binary) mountable into job containers. A file the daemon's host can see is
// mounted directly; one that exists only inside the agent container (its
// image's /usr/local/bin/node, /opt/outpost) is copied once into the data
// dir, which is a host mount, and mounted from there at its original path.
import { createHash } from 'node:crypto';
import { cp, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { hostPathOf, type Placement } from './placement.ts';

export interface SharedMount {
  /** Host path the daemon binds. */
  hostPath: string;
  /** Where the job container sees it: the path the agent uses. */
  containerPath: string;
}

export class SharedFiles {
  readonly #placement: Placement;
  readonly #runtimeDir: string;
  readonly #copies = new Map<string, Promise<string>>();

  constructor(placement: Placement, dataDir: string) {
    this.#placement = placement;
    this.#runtimeDir = path.join(dataDir, 'runtime');
  }

  async mount(agentPath: string): Promise<SharedMount> {
    const direct = hostPathOf(this.#placement, agentPath);
    if (direct !== undefined) return { hostPath: direct, containerPath: agentPath };
    let copy = this.#copies.get(agentPath);
    if (!copy) {
      copy = this.#copy(agentPath);
      this.#copies.set(agentPath, copy);
      copy.catch(() => this.#copies.delete(agentPath));
    }
    const copied = await copy;
    const hostPath = hostPathOf(this.#placement, copied);
    if (hostPath === undefined) throw new Error(`the data dir ${path.dirname(this.#runtimeDir)} is not mounted from the host`);
    return { hostPath, containerPath: agentPath };
  }

  /** Copies into runtime/<hash of path, size, mtime>; a new agent version gets a new copy. */
  async #copy(agentPath: string): Promise<string> {
    const info = await stat(agentPath);
    const key = createHash('sha256').update(`${agentPath}\0${info.size}\0${info.mtimeMs}`).digest('hex').slice(0, 16);
    const target = path.join(this.#runtimeDir, `${key}-${path.basename(agentPath)}`);
    if (await stat(target).then(() => true, () => false)) return target;
    await mkdir(this.#runtimeDir, { recursive: true });
    const temp = `${target}.partial-${process.pid}`;
    await rm(temp, { recursive: true, force: true });
    await cp(agentPath, temp, { recursive: true, dereference: false, preserveTimestamps: true });
    await rename(temp, target).catch(async (error: NodeJS.ErrnoException) => {
      // Another agent process published the same copy first.
      await rm(temp, { recursive: true, force: true });
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    });
    return target;
  }
}
