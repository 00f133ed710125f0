// Building OpenTofu from its Go module: what an agent does when no release
// can be downloaded (a machine that reaches package registries, the Go
// module proxy among them, but not the release site), what `outpost engine
// build` does on request, and how CI gets its OpenTofu. One implementation
// for all of them.
//
// Binaries land in the build directory (OUTPOST_AGENT_ENGINE_BUILD_DIR,
// ~/.cache/outpost by default) as `tofu-<version>`, outside any agent's data
// dir, so a new clone or a new agent on the machine finds them. A build
// writes a temporary file and renames it, so a binary under its final name is
// always whole; it is kept only if it reports exactly the version asked for.
// One build per version at a time: in this process a second caller waits for
// the first, and across processes a lock file in the build directory does
// the same (the lock is taken over when its holder died).
import { spawn } from 'node:child_process';
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Logger } from 'pino';
import lockfile from 'proper-lockfile';
import { findGoToolchain, minimumGoMinor, type GoSearch, type GoToolchain } from './go-toolchain.ts';
import { reportedVersion } from './local-engine.ts';
import { engineBuildEnvironment } from '../engine-config.ts';

const openTofuModule = 'github.com/opentofu/opentofu';

/** One `go build` of a package of the OpenTofu module. */
export interface BuildTarget {
  /** Package inside the module, e.g. `./cmd/tofu`. */
  package: string;
  /** File name in the build directory. */
  name: string;
  ldflags: string;
}

/** The tofu binary. `version.dev=no` is what OpenTofu's release build sets: without it the binary calls itself `<version>-dev`, which version constraints reject. */
export function tofuTarget(version: string): BuildTarget {
  return { package: './cmd/tofu', name: `tofu-${version}`, ldflags: `-s -w -X ${openTofuModule}/version.dev=no` };
}

export interface SourceBuildOptions {
  /** OUTPOST_AGENT_ENGINE_BUILD_DIR. */
  dir: string;
  go: GoSearch;
  logger: Logger;
  /** How often a build in progress writes a line; at most 10 s. */
  progressEveryMs?: number;
  /** Environment of the go commands (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/** No usable Go toolchain: the caller explains the other ways to get an engine. */
export class GoToolchainMissing extends Error {
  readonly skipped: string[];
  constructor(skipped: string[]) {
    super(`no Go toolchain go1.${minimumGoMinor} or newer was found${skipped.length > 0 ? ` (${skipped.join('; ')})` : ''}`);
    this.name = 'GoToolchainMissing';
    this.skipped = skipped;
  }
}

/** Go ran and failed; the message carries the last lines it printed. */
export class SourceBuildFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceBuildFailed';
  }
}

type Note = (line: string) => void;

export class EngineSourceBuild {
  readonly #options: SourceBuildOptions;
  /** Builds in progress, with everyone waiting on each: every waiting job's log gets the progress lines. */
  readonly #builds = new Map<string, { done: Promise<string>; listeners: Set<Note> }>();
  readonly #stopping = new AbortController();
  readonly #env: NodeJS.ProcessEnv;

  constructor(options: SourceBuildOptions) {
    this.#options = options;
    this.#env = options.env ?? engineBuildEnvironment();
  }

  get dir(): string {
    return this.#options.dir;
  }

  /** A binary built earlier that reports exactly this version, or undefined. */
  async findBuilt(version: string, target: BuildTarget = tofuTarget(version)): Promise<string | undefined> {
    const binary = path.join(this.#options.dir, target.name);
    const exists = await stat(binary).then((info) => info.isFile(), () => false);
    if (!exists) return undefined;
    if (target.package !== './cmd/tofu') return binary;
    const reported = await reportedVersion(binary, this.#env.PATH);
    return reported.ok && reported.version === version ? binary : undefined;
  }

  /** Finds Go, or throws GoToolchainMissing. */
  async toolchain(): Promise<GoToolchain> {
    const { found, skipped } = await findGoToolchain(this.#options.go);
    if (found === undefined) throw new GoToolchainMissing(skipped);
    return found;
  }

  /**
   * Builds the targets (tofu by default) from the module at `version` and
   * returns the first one's path. Concurrent callers of one version share
   * one build; `note` gets the progress lines of whichever build they wait on.
   */
  build(version: string, note: Note, targets: BuildTarget[] = [tofuTarget(version)]): Promise<string> {
    const key = `${version}:${targets.map((t) => t.name).join(',')}`;
    const running = this.#builds.get(key);
    if (running !== undefined) {
      note(`Waiting for the build of OpenTofu ${version} started for another job`);
      running.listeners.add(note);
      return running.done.finally(() => running.listeners.delete(note));
    }
    const listeners = new Set<Note>([note]);
    const broadcast: Note = (line) => {
      for (const listener of listeners) listener(line);
    };
    const done = this.#buildLocked(version, broadcast, targets).finally(() => this.#builds.delete(key));
    this.#builds.set(key, { done, listeners });
    return done;
  }

  /** Stops builds in progress (the agent is exiting); their callers get an error. */
  close(): void {
    this.#stopping.abort();
  }

  async #buildLocked(version: string, note: Note, targets: BuildTarget[]): Promise<string> {
    if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) throw new SourceBuildFailed(`${JSON.stringify(version)} is not an OpenTofu release version`);
    await mkdir(this.#options.dir, { recursive: true });
    const release = await this.#lock(version, note);
    try {
      const built = await Promise.all(targets.map((target) => this.findBuilt(version, target)));
      if (built.every((binary) => binary !== undefined)) {
        note(`Using OpenTofu ${version} built by another process into ${this.#options.dir}`);
        return built[0]!;
      }
      return await this.#build(version, note, targets);
    } finally {
      await release().catch(() => undefined);
    }
  }

  /** Takes `<dir>/tofu-<version>.lock`, waiting (with a line every interval) while another process builds. */
  async #lock(version: string, note: Note): Promise<() => Promise<void>> {
    const target = path.join(this.#options.dir, `tofu-${version}.build`);
    const startedAt = Date.now();
    let lastNote = 0;
    for (;;) {
      try {
        // `stale`: a holder that died stops refreshing the lock, and it is taken over after this long.
        return await lockfile.lock(target, { realpath: false, stale: 30_000, update: 5_000, lockfilePath: `${target}.lock`, onCompromised: () => undefined });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
      }
      if (Date.now() - lastNote >= this.#progressEveryMs()) {
        lastNote = Date.now();
        note(`Waiting for another process on this machine that is building OpenTofu ${version} into ${this.#options.dir} (${seconds(Date.now() - startedAt)} so far)`);
      }
      if (this.#stopping.signal.aborted) throw new SourceBuildFailed('the agent is stopping');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }

  async #build(version: string, note: Note, targets: BuildTarget[]): Promise<string> {
    const go = await this.toolchain();
    const startedAt = Date.now();
    const progress = new BuildProgress(note, `OpenTofu ${version}`, startedAt, this.#progressEveryMs());
    try {
      progress.phase('downloading the module');
      const moduleDir = await this.#downloadModule(go, version, progress);
      const outputs: string[] = [];
      for (const target of targets) {
        progress.phase(`compiling ${target.package}`);
        outputs.push(await this.#compile(go, moduleDir, target, progress));
      }
      const reported = await reportedVersion(outputs[0]!, this.#env.PATH);
      if (!reported.ok || reported.version !== version) {
        throw new SourceBuildFailed(`the binary built from ${openTofuModule}@v${version} reports ${reported.ok ? `version ${reported.version}` : `no version (${reported.reason})`}`);
      }
      const finals = targets.map((target) => path.join(this.#options.dir, target.name));
      for (const [index, output] of outputs.entries()) await rename(output, finals[index]!);
      note(`Built OpenTofu ${version} in ${seconds(Date.now() - startedAt)} (${progress.summary()}): ${finals[0]}`);
      this.#options.logger.info({ version, go: go.version, ms: Date.now() - startedAt, binary: finals[0] }, 'built OpenTofu from its Go module');
      return finals[0]!;
    } finally {
      progress.stop();
    }
  }

  async #downloadModule(go: GoToolchain, version: string, progress: BuildProgress): Promise<string> {
    // From the build directory: inside some other Go module, `go mod download` would resolve against that module.
    const { stdout, code, tail } = await this.#go(go, ['mod', 'download', '-json', `${openTofuModule}@v${version}`], this.#options.dir, progress);
    let answer: { Dir?: string; Error?: string } = {};
    try {
      answer = JSON.parse(stdout) as typeof answer;
    } catch {
      // Reported below with what Go printed.
    }
    if (code !== 0 || answer.Dir === undefined) {
      throw new SourceBuildFailed(`\`go mod download ${openTofuModule}@v${version}\` failed: ${answer.Error ?? (tail || `exit code ${code}`)}`);
    }
    return answer.Dir;
  }

  async #compile(go: GoToolchain, moduleDir: string, target: BuildTarget, progress: BuildProgress): Promise<string> {
    const output = path.join(this.#options.dir, `.${target.name}.${process.pid}.${Date.now()}.partial`);
    const args = ['build', '-v', '-trimpath', '-buildvcs=false', '-ldflags', target.ldflags, '-o', output, target.package];
    try {
      const { code, tail } = await this.#go(go, args, moduleDir, progress);
      if (code !== 0) throw new SourceBuildFailed(`\`go build ${target.package}\` failed (exit code ${code}): ${tail}`);
      await chmod(output, 0o755);
      return output;
    } catch (error) {
      await rm(output, { force: true });
      throw error;
    }
  }

  /** Runs go; stderr lines feed the progress (`go: downloading …` and one package path per compiled package). */
  #go(go: GoToolchain, args: string[], cwd: string, progress: BuildProgress): Promise<{ stdout: string; code: number; tail: string }> {
    const base = this.#env;
    // -modcacherw: Go's module cache is read-only by default, which leaves a temporary HOME undeletable.
    const env = { ...base, CGO_ENABLED: '0', GOFLAGS: `${base.GOFLAGS ?? ''} -modcacherw`.trim() };
    return new Promise((resolve, reject) => {
      const child = spawn(go.path, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], signal: this.#stopping.signal });
      const lastLines: string[] = [];
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      readline.createInterface({ input: child.stderr }).on('line', (line) => {
        progress.goLine(line);
        lastLines.push(line);
        if (lastLines.length > 15) lastLines.shift();
      });
      child.once('error', (error) =>
        reject(this.#stopping.signal.aborted ? new SourceBuildFailed('the build was stopped: the agent is exiting') : new SourceBuildFailed(`could not run ${go.path}: ${error.message}`)),
      );
      child.once('close', (code) => resolve({ stdout, code: code ?? 1, tail: lastLines.filter((line) => !line.startsWith('go: downloading')).join(os.EOL) }));
    });
  }

  #progressEveryMs(): number {
    return Math.min(10_000, this.#options.progressEveryMs ?? 10_000);
  }
}

/** Counts what Go reports and writes a line every interval while a build runs. */
class BuildProgress {
  #phase = 'starting';
  #downloaded = 0;
  #compiled = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(note: Note, what: string, startedAt: number, everyMs: number) {
    this.#timer = setInterval(() => note(`Still building ${what}: ${seconds(Date.now() - startedAt)}, ${this.#phase}; ${this.summary()}`), everyMs);
  }

  phase(phase: string): void {
    this.#phase = phase;
  }

  goLine(line: string): void {
    if (line.startsWith('go: downloading ')) this.#downloaded += 1;
    else if (/^[\w.-]+(\/[\w.@~+-]+)*$/.test(line)) this.#compiled += 1;
  }

  summary(): string {
    return `${this.#downloaded} modules downloaded, ${this.#compiled} packages compiled`;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

function seconds(ms: number): string {
  const total = Math.round(ms / 1000);
  return total < 60 ? `${total} s` : `${Math.floor(total / 60)} min ${total % 60} s`;
}
