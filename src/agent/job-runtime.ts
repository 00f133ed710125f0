// The files a sandbox needs to run the job operation. When the agent runs
// from dist/ (the shipped package and images), that is the operation bundled
// into one file, dist/job/operation.mjs. When it runs from the sources
// (tests, `npm run outpost`), it is src/job/entry.ts, the modules it imports
// (transitively), package.json, and the production packages those modules
// import with their dependencies. Copied once per
// version into <data dir>/runtime/job-<hash>/ so a sandbox that isolates
// files is shown exactly this and nothing else of the app directory (which,
// in a checkout, holds the server's database and the admin token in
// deploy/docker/.env).
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Driver } from './drivers/driver.ts';

export interface JobRuntime {
  /** Directory to share read-only with the sandbox. */
  root: string;
  /** The job operation's entry module inside `root`. */
  entry: string;
  /** Environment the operation's Node process runs with (its compile cache). */
  env?: Readonly<Record<string, string>>;
}

/**
 * Relative path of the job operation's entry module inside the app (and the
 * runtime), built or not. The build bundles the operation into one file
 * (esbuild, `npm run build`): it starts about 18 ms sooner than the same
 * modules loaded one by one (60 against 78 ms with the compile cache,
 * measured), on every job.
 */
export const jobEntryModules = { bundled: 'dist/job/operation.mjs', source: 'src/job/entry.ts' } as const;
/** The entry that matches how this module runs: from dist/ as JavaScript, or from src/ as TypeScript. */
const entryModule = import.meta.url.endsWith('.js') ? jobEntryModules.bundled : jobEntryModules.source;

/** Static and dynamic import specifiers written as string literals. */
const importPattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"\n]+)['"]/g;

/** The app-relative files of the runtime: source modules, package.json, and package directories. */
export async function runtimeFiles(appRoot: string, entry: string = entryModule): Promise<string[]> {
  // Self-contained: its text would only feed the import scan false matches.
  if (entry === jobEntryModules.bundled) return ['package.json', entry];
  const modules = new Set<string>();
  const packages = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const relative = queue.pop()!;
    if (modules.has(relative)) continue;
    // A path inside a comment may name nothing: only real files are modules.
    const text = await readFile(path.join(appRoot, relative), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    modules.add(relative);
    for (const [, specifier] of text.matchAll(importPattern)) {
      if (specifier!.startsWith('.')) queue.push(path.join(path.dirname(relative), specifier!));
      else if (!specifier!.startsWith('node:')) packages.add(packageName(specifier!));
    }
  }
  const packageDirs = await packageClosure(appRoot, [...packages]);
  return ['package.json', ...[...modules].sort(), ...packageDirs.sort()];
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Top-level node_modules directories of the packages and everything they
 * depend on (resolved as Node does, walking up from the dependent). A
 * package nested in another's node_modules is copied with its parent.
 */
async function packageClosure(appRoot: string, roots: readonly string[]): Promise<string[]> {
  const topLevel = new Set<string>();
  const seen = new Set<string>();
  const queue = roots.map((name) => ({ name, from: appRoot }));
  while (queue.length > 0) {
    const { name, from } = queue.pop()!;
    const dir = await resolvePackage(appRoot, name, from);
    if (dir === undefined) throw new Error(`the job operation needs the package ${name}, which is not installed under ${appRoot}`);
    if (seen.has(dir)) continue;
    seen.add(dir);
    const relative = path.relative(appRoot, dir);
    if (relative === path.join('node_modules', name)) topLevel.add(relative);
    const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const optional = new Set(Object.keys(manifest.optionalDependencies ?? {}));
    for (const dependency of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      if (optional.has(dependency) && (await resolvePackage(appRoot, dependency, dir)) === undefined) continue;
      queue.push({ name: dependency, from: dir });
    }
  }
  return [...topLevel];
}

async function resolvePackage(appRoot: string, name: string, from: string): Promise<string | undefined> {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (await stat(path.join(candidate, 'package.json')).then(() => true, () => false)) return candidate;
    if (dir === appRoot || !dir.startsWith(appRoot)) return undefined;
  }
}

/** A content key of the files: a new agent version (or edited checkout) gets a new runtime. */
async function versionKey(appRoot: string, files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) {
    const info = await stat(path.join(appRoot, file));
    hash.update(`${file}\0${info.size}\0${info.mtimeMs}\0`);
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds the runtime under `dataDir` if this version has none yet; the copy
 * is published by a rename, so a half-copied runtime is never used.
 */
export async function prepareJobRuntime(appRoot: string, dataDir: string, entry: string = entryModule): Promise<JobRuntime> {
  const files = await runtimeFiles(appRoot, entry);
  const root = path.join(dataDir, 'runtime', `job-${await versionKey(appRoot, files)}`);
  const runtime = { root, entry: path.join(root, entry) };
  if (await stat(runtime.entry).then(() => true, () => false)) return runtime;
  const temp = `${root}.partial-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  for (const file of files) {
    await mkdir(path.dirname(path.join(temp, file)), { recursive: true, mode: 0o755 });
    await cp(path.join(appRoot, file), path.join(temp, file), { recursive: true, dereference: false, preserveTimestamps: true });
  }
  await rename(temp, root).catch(async (error: NodeJS.ErrnoException) => {
    // Another agent process on the same data dir published it first.
    await rm(temp, { recursive: true, force: true });
    if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
  });
  return runtime;
}

/** Outpost's code and dependencies, from which the sandbox's runtime is curated. */
const appRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const jobEntry = path.join(appRoot, entryModule);
/** One runtime copy per data dir and agent process; a failed copy is retried by the next job. */
const runtimes = new Map<string, Promise<JobRuntime>>();

/**
 * What the sandbox runs the operation from. A sandbox that isolates files
 * gets only the curated runtime, never the whole app directory (in a
 * checkout it holds the server's database and the admin token); one that
 * does not isolate sees everything anyway, so it runs from the app itself.
 */
export function runtimeFor(driver: Driver, dataDir: string): Promise<JobRuntime> {
  if (!driver.capabilities().isolatesFiles) {
    // Node's compile cache, shared by the jobs of this data dir, halves the
    // operation's start-up (about 0.13 s less per job, measured) and its memory.
    return Promise.resolve({ root: appRoot, entry: jobEntry, env: { NODE_COMPILE_CACHE: path.join(dataDir, 'runtime', 'compile-cache') } });
  }
  let runtime = runtimes.get(dataDir);
  if (!runtime) {
    runtime = prepareJobRuntime(appRoot, dataDir);
    runtimes.set(dataDir, runtime);
    runtime.catch(() => runtimes.delete(dataDir));
  }
  return runtime;
}
