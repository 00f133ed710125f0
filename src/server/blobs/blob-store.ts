// Large immutable artifacts (configuration archives, plans, state files) live
// outside the database. This filesystem store is the embedded default; an
// S3-compatible store can implement the same interface for several replicas.
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';

export interface BlobStore {
  put(key: string, data: Uint8Array): Promise<void>;
  get(key: string): Promise<Buffer | undefined>;
  stream(key: string): Promise<{ stream: Readable; size: number } | undefined>;
  delete(key: string): Promise<void>;
}

export class FilesystemBlobStore implements BlobStore {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  #path(key: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key) || key.includes('..')) {
      throw new Error(`invalid blob key ${key}`);
    }
    return path.join(this.#root, key);
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const target = this.#path(key);
    // State files and plans carry secrets: readable by the server's user only.
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    // Write then rename: a reader never sees a half-written blob.
    const temp = `${target}.${randomUUID()}.tmp`;
    await writeFile(temp, data, { mode: 0o600 });
    await rename(temp, target);
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.#path(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async stream(key: string): Promise<{ stream: Readable; size: number } | undefined> {
    const file = this.#path(key);
    try {
      const { size } = await stat(file);
      return { stream: createReadStream(file), size };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }
}

export const blobKeys = {
  configuration: (cvId: string) => `configuration-versions/${cvId}.tar.gz`,
  plan: (runId: string) => `plans/${runId}.tfplan`,
  planJson: (runId: string) => `plans/${runId}.json`,
  state: (workspaceId: string, stateVersionId: string) => `state/${workspaceId}/${stateVersionId}.tfstate`,
};
