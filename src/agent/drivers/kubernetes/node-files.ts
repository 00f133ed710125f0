// Files a job pod needs that exist only inside the agent's own container
// (the Node runtime of its image, a binary outside its data and cache
// dirs): copied once into the agent's data dir, which is a directory of the
// node (hostPath, at the same path), where the pod can mount them from.
// Paths already on the node are used as they are.
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';

export class NodeFiles {
  /** Directories of the node the agent sees at the same path; 'all' when the agent runs on the node itself. */
  readonly #nodePaths: 'all' | readonly string[];
  readonly #copiesDir: string;
  readonly #copies = new Map<string, Promise<string>>();

  constructor(nodePaths: 'all' | readonly string[], dataDir: string) {
    this.#nodePaths = nodePaths === 'all' ? 'all' : nodePaths.map((entry) => path.resolve(entry));
    this.#copiesDir = path.join(dataDir, 'runtime', 'files');
  }

  onNode(file: string): boolean {
    if (this.#nodePaths === 'all') return true;
    const resolved = path.resolve(file);
    return this.#nodePaths.some((root) => resolved === root || resolved.startsWith(`${root}/`));
  }

  /** Where the pod finds `file`: itself when on the node, else its copy in the data dir. */
  place(file: string): Promise<string> {
    if (this.onNode(file)) return Promise.resolve(file);
    let copy = this.#copies.get(file);
    if (!copy) {
      copy = this.#copy(file);
      this.#copies.set(file, copy);
      copy.catch(() => this.#copies.delete(file));
    }
    return copy;
  }

  async #copy(file: string): Promise<string> {
    const info = await stat(file);
    // By identity, not content: a new binary at the same path (an upgraded image) gets a new copy.
    const digest = createHash('sha256').update(`${file}:${info.size}:${info.mtimeMs}`).digest('hex').slice(0, 16);
    const target = path.join(this.#copiesDir, digest, path.basename(file));
    if (await stat(target).then((existing) => existing.size === info.size, () => false)) return target;
    await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    const partial = `${target}.${process.pid}.partial`;
    await copyFile(file, partial);
    await chmod(partial, 0o755);
    await rename(partial, target);
    return target;
  }
}
