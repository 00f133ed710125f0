// Where the engine runs, and the backend override Outpost adds to it (so
// state goes to the control plane whatever backend the configuration
// declares). The file holds no credential: the backend is configured through
// the engine's environment (engine-environment.ts).
import { realpath, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../protocol/errors.ts';

/** An override file (name ending in _override.tf) replaces the backend of the configuration. */
export const backendOverrideFile = 'zz_outpost_backend_override.tf';

const backendOverride = `# Written by Outpost: state is kept by the Outpost control plane.
# The backend is configured through TF_HTTP_* environment variables.
terraform {
  backend "http" {}
}
`;

/**
 * Resolves the workspace's working directory inside the extracted
 * configuration; '' is the configuration root. It must exist and, links
 * followed, stay inside the configuration.
 */
export async function resolveWorkingDirectory(configDir: string, workingDirectory: string): Promise<string> {
  const shown = JSON.stringify(workingDirectory);
  const missing = (why: string): OutpostError =>
    new OutpostError('working_directory_missing', `the working directory ${shown} ${why}`);
  if (path.isAbsolute(workingDirectory)) throw missing('must be relative to the configuration root');
  const realRoot = await realpath(configDir);
  let resolved: string;
  try {
    resolved = await realpath(path.resolve(configDir, workingDirectory));
  } catch {
    throw missing('is not in the configuration');
  }
  if (resolved !== realRoot && !resolved.startsWith(realRoot + path.sep)) throw missing('is outside the configuration');
  if (!(await stat(resolved)).isDirectory()) throw missing('is not a directory');
  return resolved;
}

/** Writes the backend override into the working directory, replacing a file of that name. */
export async function writeBackendOverride(workingDir: string): Promise<string> {
  const file = path.join(workingDir, backendOverrideFile);
  // Removed first so a link of that name in the archive is replaced, not written through.
  await unlink(file).catch(() => {});
  await writeFile(file, backendOverride, { flag: 'wx', mode: 0o644 });
  return file;
}
