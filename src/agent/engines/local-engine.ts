// The fallback when a release cannot be downloaded: an engine binary already
// on this machine, used only if it reports exactly the requested version
// (a job pinned to 1.10.10 must not silently run 1.9.0).
// Candidates, in order: OUTPOST_AGENT_ENGINE_PATH (a binary, or a directory
// holding tofu/terraform), then each `tofu`/`terraform` on the search PATH.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Engine } from '../../protocol/statuses.ts';
import { engineBinaryName } from './release-files.ts';

const run = promisify(execFile);

export interface LocalSearch {
  engine: Engine;
  version: string;
  localPath: string | undefined;
  searchPath: string | undefined;
  note: (line: string) => void;
}

export interface LocalEngine {
  path: string;
  /** Where it was found, for the run log: `OUTPOST_AGENT_ENGINE_PATH` or `on PATH`. */
  origin: string;
}

export interface LocalSearchResult {
  found: LocalEngine | undefined;
  /** One line per candidate that was looked at and not used. */
  skipped: string[];
}

const versionTimeoutMs = 20_000;

export async function findLocalEngine(search: LocalSearch): Promise<LocalSearchResult> {
  const skipped: string[] = [];
  const skip = (line: string): void => {
    skipped.push(line);
    search.note(line);
  };
  for (const candidate of await candidates(search, skip)) {
    const label = `${candidate.path} (${candidate.origin})`;
    const reported = await reportedVersion(candidate.path, search.searchPath);
    if (!reported.ok) skip(`Not using ${label}: \`version -json\` failed (${reported.reason})`);
    else if (reported.version !== search.version) {
      skip(`Not using ${label}: it reports version ${reported.version}, not ${search.version}`);
    } else return { found: candidate, skipped };
  }
  return { found: undefined, skipped };
}

async function candidates(search: LocalSearch, skip: (line: string) => void): Promise<LocalEngine[]> {
  const binaryName = engineBinaryName(search.engine);
  const found: LocalEngine[] = [];
  if (search.localPath !== undefined) {
    const configured = await configuredBinary(search.localPath, binaryName);
    if (typeof configured === 'string') found.push({ path: configured, origin: 'OUTPOST_AGENT_ENGINE_PATH' });
    else skip(`Not using OUTPOST_AGENT_ENGINE_PATH (${search.localPath}): ${configured.problem}`);
  }
  // Every match on PATH, not just the first: a newer tofu earlier on PATH
  // should not hide the pinned version installed further along.
  for (const directory of (search.searchPath ?? '').split(path.delimiter)) {
    // Empty and relative PATH entries mean "the current directory": never trust those.
    if (!path.isAbsolute(directory)) continue;
    const file = path.join(directory, binaryName);
    if (await isExecutableFile(file)) found.push({ path: file, origin: 'on PATH' });
  }
  return dedupe(found);
}

async function configuredBinary(localPath: string, binaryName: string): Promise<string | { problem: string }> {
  let info;
  try {
    info = await stat(localPath);
  } catch {
    return { problem: 'it does not exist' };
  }
  const file = info.isDirectory() ? path.join(localPath, binaryName) : localPath;
  if (await isExecutableFile(file)) return file;
  return { problem: info.isDirectory() ? `it has no executable ${binaryName}` : 'it is not an executable file' };
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// The same binary reached twice (PATH listing a directory twice, or a symlink
// to the configured binary) is checked once, under its first name.
async function dedupe(list: LocalEngine[]): Promise<LocalEngine[]> {
  const seen = new Set<string>();
  const unique: LocalEngine[] = [];
  for (const item of list) {
    const real = await realpath(item.path).catch(() => item.path);
    if (seen.has(real)) continue;
    seen.add(real);
    unique.push(item);
  }
  return unique;
}

export type ReportedVersion = { ok: true; version: string } | { ok: false; reason: string };

/**
 * Runs `<binary> version -json` and reads `terraform_version` (OpenTofu keeps
 * that key). The CLI config points at the null device so a missing or broken
 * ~/.tofurc cannot fail the check, and the update check is off so it stays local.
 */
export async function reportedVersion(binary: string, searchPath: string | undefined): Promise<ReportedVersion> {
  // Asking costs a process start (about 30 ms) on every job of an agent that
  // runs a local binary; a file that has not changed reports what it did.
  const identity = await fileIdentity(binary);
  const known = identity === undefined ? undefined : versionsSeen.get(binary);
  if (known !== undefined && known.identity === identity) return known.reported;
  const reported = await askVersion(binary, searchPath);
  if (identity !== undefined && reported.ok) versionsSeen.set(binary, { identity, reported });
  return reported;
}

/** Successful answers by binary path, with the file's identity when it answered. */
const versionsSeen = new Map<string, { identity: string; reported: ReportedVersion }>();

/** Device, inode, size and change time of the file a path resolves to: a replaced or rewritten binary changes it. */
async function fileIdentity(binary: string): Promise<string | undefined> {
  try {
    const info = await stat(binary, { bigint: true });
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch {
    return undefined;
  }
}

async function askVersion(binary: string, searchPath: string | undefined): Promise<ReportedVersion> {
  let stdout: string;
  try {
    ({ stdout } = await run(binary, ['version', '-json'], {
      env: { TF_CLI_CONFIG_FILE: os.devNull, CHECKPOINT_DISABLE: '1', PATH: searchPath ?? '' },
      timeout: versionTimeoutMs,
      maxBuffer: 1024 * 1024,
    }));
  } catch (error) {
    const failure = error as { killed?: boolean; code?: unknown; message?: string };
    if (failure.killed === true) return { ok: false, reason: `no answer within ${versionTimeoutMs / 1000}s` };
    const reason = typeof failure.code === 'number' ? `exit code ${failure.code}` : String(failure.code ?? failure.message);
    return { ok: false, reason };
  }
  try {
    const version = (JSON.parse(stdout) as { terraform_version?: unknown }).terraform_version;
    if (typeof version === 'string') return { ok: true, version: version.replace(/^v/, '') };
  } catch {
    // Engines older than 0.13 print text, not JSON: reported below as unreadable.
  }
  return { ok: false, reason: 'its output has no terraform_version' };
}
