// The kubernetes driver: one pod per job, through the Kubernetes API. The
// job's directory and the files it needs (the Node runtime, the job
// operation, the engine) are directories of the pod's node, mounted at the
// paths the agent uses, so the agent (on that node) and the pod share them.
//
// `direct`: start() creates the pod and its command runs at once; for an
// agent that runs on the node itself. `worker`: the pod was created by the
// agent's controller and scheduled here (src/agent/kubernetes/); start()
// opens its gate (a file in the job's directory that gives the command and
// its environment). Either way the driver follows the `job` container's log,
// waits for its exit, signals its first process through exec, and deletes
// the pod (after a short TTL, for people looking at it) and the job token's
// secret. Pods carry the job's labels and outlive the agent: a restarted
// agent re-attaches to them (recover) and removes those no job owns.
import { chown, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { OutpostError } from '../../../protocol/errors.ts';
import type { Driver, DriverCapabilities, ExitResult, RunningTask, TaskHandle, TaskSpec } from '../driver.ts';
import type { KubeApi } from './kube-api.ts';
import { NodeFiles } from './node-files.ts';
import { gateFile, gateFileName, jobContainerName, jobPod, jobPodName, jobSecretName, podAnnotations, podLabels } from './pod-manifest.ts';
import { jobContainerState } from './pod-status.ts';
import { PodWaiter } from './pod-waiter.ts';

export interface KubernetesDriverOptions {
  api: KubeApi;
  /** controller: the agent's controller makes its pods itself (src/agent/kubernetes/); the driver only answers for the cluster. */
  mode: 'direct' | 'worker' | 'controller';
  /** Labels this deployment's job pods, so two deployments never touch each other's. */
  instance: string;
  dataDir: string;
  /** Directories of the node the agent sees at the same path ('all': the agent runs on the node). */
  nodePaths: 'all' | readonly string[];
  /** The pod template (from OUTPOST_AGENT_KUBERNETES_POD_TEMPLATE). */
  template: V1Pod;
  defaultImage: string;
  jobUser: { uid: number; gid: number };
  /** worker: the node this agent runs on. */
  nodeName?: string | undefined;
  /** A job container not running this long after start() fails the job (an image that cannot be pulled, say). */
  startupTimeoutMs: number;
  /** How long a finished job's pod is kept. */
  podTtlMs: number;
  logger: Logger;
}

export class KubernetesDriver implements Driver {
  readonly name = 'kubernetes';
  readonly #options: KubernetesDriverOptions;
  readonly #files: NodeFiles;
  readonly #waiter: PodWaiter;
  readonly #exits = new Map<string, Promise<ExitResult>>();

  constructor(options: KubernetesDriverOptions) {
    this.#options = options;
    this.#files = new NodeFiles(options.nodePaths, options.dataDir);
    this.#waiter = new PodWaiter(options.api, { instance: options.instance, nodeName: options.mode === 'worker' ? options.nodeName : undefined });
  }

  capabilities(): DriverCapabilities {
    return { recover: true, isolatesFiles: true, sharesAgentLoopback: false };
  }

  async fingerprint(): Promise<{ healthy: boolean; detail: string }> {
    try {
      return { healthy: true, detail: `Kubernetes ${await this.#options.api.serverVersion()}, namespace ${this.#options.api.namespace}` };
    } catch (error) {
      return { healthy: false, detail: (error as Error).message };
    }
  }

  async start(spec: TaskSpec): Promise<RunningTask> {
    if (this.#options.mode === 'controller') throw new OutpostError('internal', 'a Kubernetes controller starts no job in its own process');
    await prepareJobDirectory(spec.workdir, this.#options.jobUser);
    const placed = new Map<string, string>();
    for (const file of spec.shared) placed.set(file, await this.#files.place(file));
    const command = spec.command.map((word) => placed.get(word) ?? word);
    const env = Object.fromEntries(Object.entries(spec.env).map(([name, value]) => [name, placed.get(value) ?? value]));
    const podName = this.#options.mode === 'worker' ? await this.#openGate(spec, env, command) : await this.#createDirect(spec, env, command, [...placed.values()]);
    const handle: TaskHandle = { version: 1, driver: this.name, jobId: spec.jobId, agentId: spec.agentId, workdir: spec.workdir, ref: podName, startedAt: Date.now() };
    try {
      return { handle, output: await this.#follow(podName) };
    } catch (error) {
      await this.destroy(handle);
      throw error;
    }
  }

  async wait(handle: TaskHandle): Promise<ExitResult> {
    let exit = this.#exits.get(handle.jobId);
    if (!exit) {
      exit = this.#waitForExit(handle);
      this.#exits.set(handle.jobId, exit);
    }
    return exit;
  }

  /** The signal reaches the job container's first process (the job operation), through exec. */
  async signal(handle: TaskHandle, signal: NodeJS.Signals): Promise<void> {
    if (signal === 'SIGKILL') return this.#kill(handle);
    await this.#options.api.execute(handle.ref, jobContainerName, ['sh', '-c', `kill -${signal.replace(/^SIG/, '')} 1`]).catch((error: unknown) => {
      this.#options.logger.warn({ err: (error as Error).message, pod: handle.ref, signal }, 'could not signal the job pod');
    });
  }

  async stop(handle: TaskHandle, timeoutMs: number): Promise<void> {
    await this.signal(handle, 'SIGINT');
    const exited = this.wait(handle).then(() => true, () => true);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    if (!(await Promise.race([exited, timedOut]))) await this.#kill(handle);
  }

  /** Removes the job's directory now, and its pod (with the token's secret): at once while it runs, after the TTL once it has ended. */
  async destroy(handle: TaskHandle): Promise<void> {
    this.#exits.delete(handle.jobId);
    await rm(handle.workdir, { recursive: true, force: true });
    const warn = (error: unknown) => this.#options.logger.warn({ err: (error as Error).message, pod: handle.ref }, 'could not delete the job pod');
    const pod = await this.#options.api.readPod(handle.ref).catch(() => undefined);
    const ended = pod !== undefined && jobContainerState(pod).state === 'terminated';
    if (!ended || this.#options.podTtlMs <= 0) return this.#deletePod(handle.jobId, 0).catch(warn);
    // Later, by uid: the job may meanwhile have a new pod of the same name (a
    // plan queued again). The token's secret goes with the pod that owns it.
    const uid = pod.metadata?.uid;
    setTimeout(() => void this.#options.api.deletePod(handle.ref, 0, uid).catch(warn), this.#options.podTtlMs).unref();
  }

  async inspect(handle: TaskHandle): Promise<{ running: boolean }> {
    const pod = await this.#options.api.readPod(handle.ref);
    if (!pod) return { running: false };
    const state = jobContainerState(pod).state;
    return { running: state === 'running' || state === 'pending' };
  }

  /** The pod of a persisted handle, if it is still this job's: its log is followed again from the first byte. */
  async recover(handle: TaskHandle): Promise<RunningTask | undefined> {
    if (this.#options.mode === 'controller') return undefined;
    const pod = await this.#options.api.readPod(handle.ref);
    if (!pod || !this.#owns(pod, handle)) return undefined;
    const state = jobContainerState(pod).state;
    if (state !== 'running' && state !== 'terminated') return undefined;
    return { handle, output: await this.#follow(handle.ref) };
  }

  /**
   * Deletes job pods of this deployment that no job of this agent owns: on
   * this node (worker) those a worker took over, or (direct) those this
   * driver's data dir created. A pod still waiting for a worker is the
   * controller's, and left alone.
   */
  async removeOrphans(known: ReadonlySet<string>): Promise<number> {
    const { api, instance, mode, nodeName } = this.#options;
    // The controller's pods are the workers' once taken over, and its own wait in its runners.
    if (mode === 'controller') return 0;
    const pods = await api.listPods({
      labelSelector: `${podLabels.instance}=${instance},${podLabels.role}=job`,
      ...(mode === 'worker' && nodeName ? { fieldSelector: `spec.nodeName=${nodeName}` } : {}),
    });
    let removed = 0;
    for (const pod of pods) {
      const jobId = pod.metadata?.labels?.[podLabels.jobId] ?? '';
      if (known.has(jobId)) continue;
      if (mode === 'worker' && !pod.metadata?.labels?.[podLabels.adoptedBy]) continue;
      if (pod.metadata?.annotations?.[podAnnotations.workdir]?.startsWith(`${this.#options.dataDir}/`) !== true) continue;
      await this.#deletePod(jobId, 0);
      removed++;
    }
    return removed;
  }

  /** The pod is this handle's job's, of this deployment, for this agent's directories (and, for a worker, on its node). */
  #owns(pod: V1Pod, handle: TaskHandle): boolean {
    const { instance, mode, nodeName } = this.#options;
    const labels = pod.metadata?.labels ?? {};
    if (labels[podLabels.jobId] !== handle.jobId || labels[podLabels.instance] !== instance) return false;
    if (pod.metadata?.annotations?.[podAnnotations.workdir] !== handle.workdir || !handle.workdir.startsWith(`${this.#options.dataDir}/`)) return false;
    return mode !== 'worker' || pod.spec?.nodeName === nodeName;
  }

  /**
   * The job container's memory in use, read from its cgroup through exec
   * (cgroup v2's memory.current, else v1's usage minus inactive file cache,
   * as the kernel's limit counts it); undefined when it cannot be read.
   */
  async memoryUsage(handle: TaskHandle): Promise<number | undefined> {
    const read = 'cat /sys/fs/cgroup/memory.current 2>/dev/null || cat /sys/fs/cgroup/memory/memory.usage_in_bytes';
    const text = await this.#options.api.execute(handle.ref, jobContainerName, ['sh', '-c', read]).catch(() => undefined);
    const bytes = Number(text?.trim());
    return text !== undefined && Number.isFinite(bytes) && bytes > 0 ? bytes : undefined;
  }

  /** Job pods on this worker's node (waiting for it, or another process's): their directories are mounted already. */
  async jobsInUseElsewhere(): Promise<ReadonlySet<string>> {
    const { api, instance, mode, nodeName } = this.#options;
    if (mode !== 'worker' || !nodeName) return new Set();
    const pods = await api.listPods({ labelSelector: `${podLabels.instance}=${instance},${podLabels.role}=job`, fieldSelector: `spec.nodeName=${nodeName}` });
    return new Set(pods.map((pod) => pod.metadata?.labels?.[podLabels.jobId] ?? '').filter(Boolean));
  }

  async #createDirect(spec: TaskSpec, env: Record<string, string>, command: string[], shared: string[]): Promise<string> {
    const { api, instance, template, defaultImage, jobUser } = this.#options;
    const secretName = jobSecretName(spec.jobId);
    await api.deleteSecret(secretName);
    await api.createSecret({ metadata: { name: secretName, labels: { [podLabels.instance]: instance, [podLabels.jobId]: spec.jobId } }, stringData: { OUTPOST_JOB_TOKEN: env.OUTPOST_JOB_TOKEN ?? '' } });
    const pod = jobPod(template, { jobId: spec.jobId, agentId: spec.agentId, instance, workdir: spec.workdir, readOnlyPaths: shared, env, command, secretName, defaultImage, defaultUser: jobUser });
    // A pod of the same job left by a crash between create and persist.
    await api.deletePod(pod.metadata!.name!, 0);
    await this.#waiter.gone(pod.metadata!.name!);
    let created: V1Pod;
    try {
      created = await api.createPod(pod);
    } catch (error) {
      await api.deleteSecret(secretName);
      throw new OutpostError('sandbox_failed', `the job pod could not be created: ${(error as Error).message}`);
    }
    await api.ownSecretByPod(secretName, created).catch((error: unknown) => this.#options.logger.warn({ err: (error as Error).message }, 'could not make the pod own its token secret'));
    return created.metadata!.name!;
  }

  /** Writes the gate file the controller's pod waits for on this node: the command and its environment. */
  async #openGate(spec: TaskSpec, env: Record<string, string>, command: string[]): Promise<string> {
    const name = jobPodName(spec.jobId);
    const pod = await this.#options.api.readPod(name);
    if (!pod || pod.metadata?.labels?.[podLabels.instance] !== this.#options.instance) throw new OutpostError('sandbox_failed', `the job pod ${name} does not exist (any more)`);
    if (pod.spec?.nodeName !== this.#options.nodeName) throw new OutpostError('sandbox_failed', `the job pod ${name} runs on node ${pod.spec?.nodeName ?? '(none)'}, not on ${this.#options.nodeName}`);
    const gate = path.join(spec.workdir, gateFileName);
    const partial = `${gate}.partial`;
    await writeFile(partial, gateFile(env, command), { mode: 0o600 });
    if (process.getuid?.() === 0) await chown(partial, this.#options.jobUser.uid, this.#options.jobUser.gid);
    await rename(partial, gate);
    return name;
  }

  /** The job container's output from its first byte, once it runs; fails the job when it cannot start. */
  async #follow(podName: string): Promise<Readable> {
    const state = await this.#waiter.started(podName, this.#options.startupTimeoutMs);
    if (state.state === 'stuck') throw new OutpostError('sandbox_failed', `the job pod ${podName} cannot start: ${state.reason}`);
    const { output } = await this.#options.api.followLog(podName, jobContainerName);
    return output;
  }

  async #waitForExit(handle: TaskHandle): Promise<ExitResult> {
    const exit = await this.#waiter.exited(handle.ref);
    // Gone before it said how it ended: deleted, as a kill does.
    return exit ?? { code: null, signal: 'SIGKILL', oomKilled: false };
  }

  /** A container's first process ignores signals from inside its own pid namespace: a kill deletes the pod at once. */
  async #kill(handle: TaskHandle): Promise<void> {
    await this.#options.api.deletePod(handle.ref, 0);
  }

  async #deletePod(jobId: string, graceSeconds: number): Promise<void> {
    await this.#options.api.deletePod(jobPodName(jobId), graceSeconds);
    await this.#options.api.deleteSecret(jobSecretName(jobId));
  }
}

/**
 * Creates a job's directory on the node for the job's user. Job pods mount
 * it (and the shared node directories) with hostPath type Directory, so it
 * must exist before the pod's container starts: the kubelet would otherwise
 * create it as root's, where a job running as another user cannot write.
 */
export async function prepareJobDirectory(workdir: string, jobUser: { uid: number; gid: number }): Promise<void> {
  await mkdir(workdir, { recursive: true, mode: 0o700 });
  // The job runs as the pod's user; the directory must be theirs.
  if (process.getuid?.() === 0) await chown(workdir, jobUser.uid, jobUser.gid);
}
