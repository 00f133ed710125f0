// The docker driver: one container per job from the runner image, through
// the Docker Engine API (dockerode). The job operation and the engine come
// from the agent, mounted read-only; the job directory is the only writable
// mount. Containers carry agent and job labels, and outlive the agent: a
// restarted agent re-attaches to the containers of its jobs (their output
// read again from the container's log, their exit waited for) and removes
// whatever else of its data dir it finds.
import { chown, mkdir, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { OutpostError } from '../../../protocol/errors.ts';
import type { Driver, DriverCapabilities, ExitResult, RunningTask, TaskHandle, TaskSpec } from '../driver.ts';
import { containerMemoryInUse, type ContainerMemoryStats } from '../memory-usage.ts';
import { containerOptions, labels, type ContainerSettings } from './container-spec.ts';
import { hostPathOf, type Placement } from './placement.ts';
import { SharedFiles } from './shared-files.ts';

export interface DockerDriverOptions {
  docker: Docker;
  placement: Placement;
  dataDir: string;
  settings: Omit<ContainerSettings, 'hostDataDir'>;
  logger: Logger;
}

export class DockerDriver implements Driver {
  readonly name = 'docker';
  readonly #docker: Docker;
  readonly #placement: Placement;
  readonly #settings: ContainerSettings;
  readonly #shared: SharedFiles;
  readonly #logger: Logger;
  readonly #exits = new Map<string, Promise<ExitResult>>();
  readonly #pulls = new Map<string, Promise<void>>();
  #hostCpus: Promise<number> | undefined;

  constructor(options: DockerDriverOptions) {
    const hostDataDir = hostPathOf(options.placement, options.dataDir);
    if (hostDataDir === undefined) throw new Error(`the data dir ${options.dataDir} is not mounted from the host`);
    this.#docker = options.docker;
    this.#placement = options.placement;
    this.#settings = { ...options.settings, hostDataDir };
    this.#shared = new SharedFiles(options.placement, options.dataDir);
    this.#logger = options.logger;
  }

  capabilities(): DriverCapabilities {
    const network = this.#settings.networkMode;
    return { recover: true, isolatesFiles: true, sharesAgentLoopback: network === 'host' || network.startsWith('container:') };
  }

  async fingerprint(): Promise<{ healthy: boolean; detail: string }> {
    try {
      const version = await this.#docker.version();
      return { healthy: true, detail: `Docker Engine ${version.Version} (API ${version.ApiVersion})` };
    } catch (error) {
      return { healthy: false, detail: (error as Error).message };
    }
  }

  async start(spec: TaskSpec): Promise<RunningTask> {
    await mkdir(spec.workdir, { recursive: true, mode: 0o700 });
    // The job runs as the container user; the directory must be theirs.
    if (process.getuid?.() === 0) await chown(spec.workdir, this.#settings.user.uid, this.#settings.user.gid);
    const workdirHost = hostPathOf(this.#placement, spec.workdir);
    if (workdirHost === undefined) throw new OutpostError('sandbox_failed', `the job directory ${spec.workdir} is not on a host mount`);
    const shared = await Promise.all(spec.shared.map((file) => this.#shared.mount(file)));
    await this.#ensureImage(this.#settings.image);
    // The daemon refuses a CPU limit above its host's CPUs: the default (8
    // cores, as the Scalr agent's) means "no tighter than the host".
    this.#hostCpus ??= this.#docker.info().then((info: { NCPU?: number }) => info.NCPU ?? Infinity, () => Infinity);
    const cpuCores = Math.min(this.#settings.cpuCores, await this.#hostCpus);
    const options = containerOptions(spec, workdirHost, shared, { ...this.#settings, cpuCores });
    const container = await this.#create(options);
    // With Init, PID 1 is the daemon's tini, which always exists: an image
    // without /bin/sh would start, and fail only as tini's exit 127. Look first.
    if (!(await hasShell(container).catch(() => true))) {
      await container.remove({ force: true }).catch(() => undefined);
      throw new OutpostError('sandbox_failed', `the runner image ${this.#settings.image} has no /bin/sh; a runner image needs a POSIX shell and glibc`);
    }
    const output = new PassThrough();
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    this.#docker.modem.demuxStream(stream, output, output);
    stream.on('end', () => output.end());
    try {
      await container.start();
    } catch (error) {
      await container.remove({ force: true }).catch(() => undefined);
      throw new OutpostError('sandbox_failed', startFailure(this.#settings.image, error));
    }
    this.#trackExit(spec.jobId, container);
    const handle: TaskHandle = { version: 1, driver: this.name, jobId: spec.jobId, agentId: spec.agentId, workdir: spec.workdir, ref: container.id, startedAt: Date.now() };
    return { handle, output };
  }

  async wait(handle: TaskHandle): Promise<ExitResult> {
    return this.#exits.get(handle.jobId) ?? exitOfContainer(this.#docker.getContainer(handle.ref));
  }

  async signal(handle: TaskHandle, signal: NodeJS.Signals): Promise<void> {
    await this.#docker.getContainer(handle.ref).kill({ signal }).catch(ignoreGone);
  }

  async stop(handle: TaskHandle, timeoutMs: number): Promise<void> {
    await this.signal(handle, 'SIGINT');
    const exited = this.wait(handle).then(() => true, () => true);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    if (!(await Promise.race([exited, timedOut]))) await this.signal(handle, 'SIGKILL');
  }

  async destroy(handle: TaskHandle): Promise<void> {
    await this.#docker.getContainer(handle.ref).remove({ force: true, v: true }).catch(ignoreGone);
    this.#exits.delete(handle.jobId);
    await rm(handle.workdir, { recursive: true, force: true });
  }

  async inspect(handle: TaskHandle): Promise<{ running: boolean }> {
    const info = await this.#docker.getContainer(handle.ref).inspect().catch(() => undefined);
    return { running: info?.State?.Running === true };
  }

  /**
   * The container of a persisted handle, if it is still this job's, of this
   * data dir, and running or exited (not yet removed): its output is read
   * again from its log, from the first byte (the job's stdout and stderr are
   * one stream, so the log holds exactly the bytes start() gave), and its
   * exit is waited for as start() does. Undefined when it is gone; throws
   * when its log may not hold the whole output.
   */
  async recover(handle: TaskHandle): Promise<RunningTask | undefined> {
    const container = this.#docker.getContainer(handle.ref);
    const info = await container.inspect().catch(() => undefined);
    const owned = info?.Config?.Labels?.[labels.jobId] === handle.jobId && info?.Config?.Labels?.[labels.dataDir] === this.#settings.hostDataDir;
    if (!info || !owned || !(info.State?.Running || info.State?.Status === 'exited')) return undefined;
    const logConfig = info.HostConfig?.LogConfig;
    if (!keepsWholeLog(logConfig)) {
      throw new OutpostError('sandbox_failed', `the container's log (driver ${logConfig?.Type ?? 'unknown'}${logConfig?.Config?.['max-size'] ? `, max-size ${logConfig.Config['max-size']}` : ''}) may not hold its whole output, so the job's log could not be continued exactly`);
    }
    if (info.State.Running) await this.#checkNetworkSurvived(info);
    const output = new PassThrough();
    const log = (await container.logs({ follow: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
    this.#docker.modem.demuxStream(log, output, output);
    log.on('end', () => output.end());
    log.on('error', (error: Error) => output.destroy(error));
    this.#trackExit(handle.jobId, container);
    return { handle, output };
  }

  async removeOrphans(known: ReadonlySet<string>): Promise<number> {
    const containers = await this.#docker.listContainers({ all: true, filters: { label: [`${labels.dataDir}=${this.#settings.hostDataDir}`] } });
    let removed = 0;
    for (const info of containers) {
      if (known.has(info.Labels?.[labels.jobId] ?? '')) continue;
      await this.#docker.getContainer(info.Id).remove({ force: true, v: true }).catch(ignoreGone);
      removed++;
    }
    return removed;
  }

  async memoryUsage(handle: TaskHandle): Promise<number | undefined> {
    const stats = await this.#docker.getContainer(handle.ref).stats({ stream: false }).catch(() => undefined);
    return stats ? containerMemoryInUse(stats as ContainerMemoryStats) : undefined;
  }

  /**
   * A job container on the network of another container (`container:<id>`,
   * the agent's own when it runs in one) is cut off once that container has
   * restarted: it stays in the old network namespace, left with loopback
   * only, and can no longer reach the control plane.
   */
  async #checkNetworkSurvived(info: Docker.ContainerInspectInfo): Promise<void> {
    const network = info.HostConfig?.NetworkMode ?? '';
    if (!network.startsWith('container:')) return;
    const provider = network.slice('container:'.length);
    const state = (await this.#docker.getContainer(provider).inspect().catch(() => undefined))?.State;
    if (state?.Running && Date.parse(state.StartedAt) <= Date.parse(info.State.StartedAt)) return;
    throw new OutpostError('sandbox_failed', `the container runs on the network of container ${provider.slice(0, 12)}, which ${state?.Running ? 'has restarted since' : 'is not running'}: the job can no longer reach the control plane`);
  }

  /** Waits for the container's exit from now on, for wait(); a container removed first (destroy) fails nobody. */
  #trackExit(jobId: string, container: Docker.Container): void {
    const exit = exitOfContainer(container);
    exit.catch(() => undefined);
    this.#exits.set(jobId, exit);
  }

  async #create(options: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.#docker.createContainer(options);
    } catch (error) {
      // A container of the same job left by a crash: remove it and retry once.
      if ((error as { statusCode?: number }).statusCode !== 409 || !options.name) throw new OutpostError('sandbox_failed', (error as Error).message);
      await this.#docker.getContainer(options.name).remove({ force: true }).catch(ignoreGone);
      return this.#docker.createContainer(options);
    }
  }

  /** The image, pulled once if it is not on the host yet; concurrent jobs share the pull. */
  async #ensureImage(image: string): Promise<void> {
    if (await this.#docker.getImage(image).inspect().then(() => true, () => false)) return;
    let pull = this.#pulls.get(image);
    if (!pull) {
      pull = this.#pull(image).finally(() => this.#pulls.delete(image));
      this.#pulls.set(image, pull);
    }
    await pull;
  }

  async #pull(image: string): Promise<void> {
    this.#logger.info({ image }, 'pulling the runner image');
    try {
      const stream = await this.#docker.pull(image);
      await new Promise<void>((resolve, reject) => this.#docker.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve())));
    } catch (error) {
      throw new OutpostError(
        'sandbox_failed',
        `the runner image ${image} is not on this host and could not be pulled (${(error as Error).message}); set OUTPOST_AGENT_CONTAINER_TASK_IMAGE to an image the host has or can pull`,
      );
    }
  }
}

/**
 * Whether a container's log keeps every byte the container wrote, for
 * recover() to read it again from the first: Docker's default, json-file
 * without rotation. Rotation (`max-size`, from the daemon's `log-opts` or the
 * container's), and other log drivers (their local cache rotates), may have
 * dropped its beginning, and the count of bytes to skip would be wrong.
 */
function keepsWholeLog(config: { Type?: string; Config?: Record<string, string> } | undefined): boolean {
  return config?.Type === 'json-file' && !config.Config?.['max-size'];
}

/** The container's exit, once it has exited (at once if it has), with whether the kernel killed it for memory. */
async function exitOfContainer(container: Docker.Container): Promise<ExitResult> {
  const result = (await container.wait()) as { StatusCode: number };
  const info = await container.inspect().catch(() => undefined);
  return exitOf(result.StatusCode, info?.State?.OOMKilled === true);
}

function exitOf(code: number, oomKilled: boolean): ExitResult {
  // 128+n is how the container reports death by signal n (as a shell does).
  const signal = code > 128 && code < 160 ? ((Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0] ?? null) as NodeJS.Signals | null) : null;
  return { code: signal ? null : code, signal, oomKilled };
}

/** Whether /bin/sh exists in a created container's file system (the archive API's stat). */
async function hasShell(container: Docker.Container): Promise<boolean> {
  try {
    const response = (await container.infoArchive({ path: '/bin/sh' })) as NodeJS.ReadableStream;
    response.resume();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw error;
  }
}

function startFailure(image: string, error: unknown): string {
  const message = (error as Error).message ?? String(error);
  if (/\/bin\/sh/.test(message) && /no such file|not found/i.test(message)) {
    return `the runner image ${image} has no /bin/sh; a runner image needs a POSIX shell and glibc (${message})`;
  }
  return `the container for the job could not start from image ${image}: ${message}`;
}

function ignoreGone(error: { statusCode?: number }): void {
  if (error.statusCode === 404 || error.statusCode === 409 || error.statusCode === 304) return;
  throw error;
}
