// The working directory a plan job leaves for its run's apply. When the same
// agent claims the apply, it hands the plan job's directory over (see
// src/agent/plan-workdirs.ts): the configuration is extracted, `.terraform`
// holds what `init` installed, and the plan file is there. The apply uses it
// only if that plan file is byte for byte the one the control plane holds,
// the plan that was reviewed: code that ran during the plan could have
// rewritten the local copy, and the run may have been planned again elsewhere.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** Written by a plan job whose run may be applied next; the agent keeps only directories that hold it. */
export const applyMayFollowMarker = '.outpost-apply-may-follow';

export interface JobFiles {
  readonly archive: string;
  readonly configDir: string;
  readonly plan: string;
}

/** Files of the job directory, outside the extracted configuration. */
export function jobFiles(workdir: string): JobFiles {
  return {
    archive: path.join(workdir, 'configuration.tar.gz'),
    configDir: path.join(workdir, 'config'),
    plan: path.join(workdir, 'plan.tfplan'),
  };
}

/** Tells the agent that this directory is worth keeping for the run's apply. */
export async function markApplyMayFollow(workdir: string): Promise<void> {
  await writeFile(path.join(workdir, applyMayFollowMarker), '', { mode: 0o600 });
}

/** Where an apply job downloads the saved plan: over the plan file, or beside a handed-over one. */
export async function savedPlanTarget(workdir: string): Promise<{ file: string; handedOver: boolean }> {
  const files = jobFiles(workdir);
  const handedOver = (await isFile(files.plan)) && (await isDirectory(files.configDir));
  return { file: handedOver ? path.join(workdir, 'saved-plan.tfplan') : files.plan, handedOver };
}

/**
 * Decides, once the saved plan is downloaded to `downloaded`, whether the
 * handed-over directory is used. Either way the plan file ends up at its
 * usual place; a directory that is not used is cleared of the configuration
 * (and its `.terraform`) so the apply fetches and initialises afresh.
 */
export async function adoptHandedOverDirectory(workdir: string, downloaded: string): Promise<boolean> {
  const files = jobFiles(workdir);
  const same = await sameContent(files.plan, downloaded);
  if (same) {
    await rm(downloaded, { force: true });
    return true;
  }
  await rm(files.configDir, { recursive: true, force: true });
  await rename(downloaded, files.plan);
  return false;
}

export async function sameContent(a: string, b: string): Promise<boolean> {
  const [left, right] = await Promise.all([stat(a), stat(b)]);
  if (left.size !== right.size) return false;
  const [leftHash, rightHash] = await Promise.all([sha256Of(a), sha256Of(b)]);
  return leftHash === rightHash;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then((info) => info.isFile(), () => false);
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then((info) => info.isDirectory(), () => false);
}
