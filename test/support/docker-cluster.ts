// Fixtures for the end-to-end tests of the docker driver: the real server,
// agent, Docker Engine and OpenTofu. What the tests look at in Docker (the
// job containers, their images and labels) is read with the docker CLI, as
// an operator would, independently of the driver's own dockerode client.
//
// Every container and image a test creates is removed when it ends, pass or
// fail; failure messages carry `docker ps` and the containers' logs next to
// the server and agent logs. In CI (CI=true) a missing Docker daemon or image
// fails the suite; elsewhere the tests are skipped with the reason, as in
// test/support/drivers-under-test.ts.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { runnerImage } from './drivers-under-test.ts';
import { type AgentHandle, type TestHooks } from './cluster.ts';
import type { Run, RunStatus } from './api-calls.ts';
import { setupCluster, type Cluster, type ClusterOptions } from './test-cluster.ts';
import { waitUntil } from './waits.ts';

export { runnerImage };

const run = promisify(execFile);

/** The agent image the container tests start, as the Scalr agent's recipes do. */
export const agentImage = process.env.OUTPOST_TEST_AGENT_IMAGE ?? 'outpost/agent:latest';

/** Labels the docker driver puts on every job container (src/agent/drivers/docker/container-spec.ts). */
export const jobLabels = { jobId: 'io.outpost.job-id', dataDir: 'io.outpost.data-dir', agentId: 'io.outpost.agent-id' } as const;

/**
 * Why the docker tests cannot run here (no daemon, or an image missing), or
 * undefined when they can. In CI this throws instead: CI builds the images
 * and starts dockerd, so their absence is a failure, not a reason to skip.
 */
export function dockerUnavailable(images: readonly string[]): string | undefined {
  let reason: string | undefined;
  try {
    execFileSyncQuiet(['info']);
    const missing = images.filter((image) => {
      try {
        execFileSyncQuiet(['image', 'inspect', image]);
        return false;
      } catch {
        return true;
      }
    });
    if (missing.length > 0) reason = `the Docker daemon has no image ${missing.join(', ')} (run scripts/build-images.sh --local-bases)`;
  } catch (error) {
    reason = `no Docker daemon answers (docker info: ${firstLine((error as Error).message)})`;
  }
  if (reason !== undefined && process.env.CI === 'true') throw new Error(`CI must test the docker driver end to end, but ${reason}`);
  return reason;
}

/**
 * Why the daemon cannot enforce a job's memory limit (`docker info`), or
 * undefined when it can. Without swap limits a job over its limit may swap
 * instead of being killed. Undefined too when no daemon answers (the suites
 * are skipped, or fail in CI, for that).
 */
export function memoryLimitUnsupported(): string | undefined {
  let info: { MemoryLimit?: boolean; SwapLimit?: boolean; Warnings?: string[] | null };
  try {
    info = JSON.parse(execFileSync('docker', ['info', '--format', '{{json .}}'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 })) as typeof info;
  } catch {
    return undefined;
  }
  const warnings = (info.Warnings ?? []).join('; ');
  let reason: string | undefined;
  if (info.MemoryLimit === false) reason = `this Docker daemon cannot enforce memory limits (docker info: MemoryLimit false${warnings ? `; ${warnings}` : ''})`;
  else if (info.SwapLimit === false) reason = `this Docker daemon cannot limit swap, so a job over its memory limit may swap instead of being killed (docker info: SwapLimit false${warnings ? `; ${warnings}` : ''})`;
  if (reason !== undefined && process.env.CI === 'true') throw new Error(`CI must test the out-of-memory kill, but ${reason}`);
  return reason;
}

function execFileSyncQuiet(args: readonly string[]): void {
  execFileSync('docker', [...args], { stdio: 'ignore', timeout: 20_000 });
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '') ?? text;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the docker CLI; never throws for a non-zero exit (see `code`). */
export async function dockerCli(args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await run('docker', [...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? failed.message };
  }
}

/** Runs the docker CLI and returns its stdout; fails the test with its stderr on a non-zero exit. */
export async function docker(args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const result = await dockerCli(args, timeoutMs);
  assert.equal(result.code, 0, `docker ${args.join(' ')} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

export interface ContainerInfo {
  readonly id: string;
  /** Without the leading slash. */
  readonly name: string;
  /** The image as the container was created from it (Config.Image). */
  readonly image: string;
  readonly running: boolean;
  readonly status: string;
  readonly oomKilled: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly networkMode: string;
  readonly memory: number;
}

/** Every container (running or not) carrying `label` (`key` or `key=value`). */
export async function containersLabeled(label: string): Promise<ContainerInfo[]> {
  const ids = (await docker(['ps', '-aq', '--no-trunc', '--filter', `label=${label}`])).split('\n').filter((id) => id !== '');
  if (ids.length === 0) return [];
  // A container may go away between ps and inspect: inspect what is left.
  const inspected = await dockerCli(['inspect', ...ids]);
  const parsed = JSON.parse(inspected.stdout.trim() === '' ? '[]' : inspected.stdout) as {
    Id: string;
    Name: string;
    Config: { Image: string; Labels: Record<string, string> | null };
    State: { Running: boolean; Status: string; OOMKilled: boolean };
    HostConfig: { NetworkMode: string; Memory: number };
  }[];
  return parsed.map((c) => ({
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    image: c.Config.Image,
    running: c.State.Running,
    status: c.State.Status,
    oomKilled: c.State.OOMKilled,
    labels: c.Config.Labels ?? {},
    networkMode: c.HostConfig.NetworkMode,
    memory: c.HostConfig.Memory,
  }));
}

/** The job containers of an agent's data dir (as the agent labels them). */
export function jobContainersOf(dataDir: string): Promise<ContainerInfo[]> {
  return containersLabeled(`${jobLabels.dataDir}=${dataDir}`);
}

/** `docker ps -a` and the logs of the containers carrying `label`, for failure messages. */
export async function dockerDiagnostics(label?: string): Promise<string> {
  const parts: string[] = [];
  const ps = await dockerCli(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Image}} {{.Status}} {{.Names}} {{.Labels}}']);
  parts.push(`--- docker ps -a\n${ps.stdout}${ps.stderr}`);
  if (label !== undefined) {
    const ids = (await dockerCli(['ps', '-aq', '--filter', `label=${label}`])).stdout.split('\n').filter((id) => id !== '');
    for (const id of ids) {
      const logs = await dockerCli(['logs', '--tail', '60', id]);
      parts.push(`--- docker logs ${id}\n${logs.stdout}${logs.stderr}`);
    }
  }
  return parts.join('\n');
}

/** Force-removes every container carrying `label` when the test ends (and says so if any was left). */
export function removeContainersAfter(t: TestHooks, label: string): void {
  t.after(async () => {
    const ids = (await dockerCli(['ps', '-aq', '--filter', `label=${label}`])).stdout.split('\n').filter((id) => id !== '');
    if (ids.length > 0) await dockerCli(['rm', '-f', '-v', ...ids]);
  });
}

/** The environment of an agent that runs its jobs with the docker driver on the runner image. */
export function dockerAgentEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { OUTPOST_AGENT_DRIVER: 'docker', OUTPOST_AGENT_CONTAINER_TASK_IMAGE: runnerImage, ...extra };
}

export interface DockerCluster extends Cluster {
  /** The cluster's first agent (a docker-driver agent on the host). */
  readonly agent: AgentHandle;
  /** Run logs, process logs, `docker ps` and the logs of this cluster's job containers. */
  describe(runId?: string): Promise<string>;
  /** waitForRun with the Docker diagnostics added to the failure message. */
  waitFor(runId: string, statuses: readonly RunStatus[], timeoutMs?: number): Promise<Run>;
}

/**
 * A server (SQLite) and one docker-driver agent on the host; every job
 * container of the agent's data dir is removed when the test ends.
 */
export async function setupDockerCluster(t: TestContext, options: ClusterOptions = {}): Promise<DockerCluster> {
  const cluster = await setupCluster(t, 'sqlite', { ...options, agentEnv: dockerAgentEnv(options.agentEnv) });
  const agent = cluster.agents[0];
  assert.ok(agent, 'setupDockerCluster starts one agent');
  removeContainersAfter(t, `${jobLabels.dataDir}=${agent.dataDir}`);
  const describe = async (runId?: string): Promise<string> =>
    `${await cluster.diagnostics(runId)}\n${await dockerDiagnostics(`${jobLabels.dataDir}=${agent.dataDir}`)}`;
  return {
    ...cluster,
    agent,
    describe,
    waitFor: (runId, statuses, timeoutMs) => withDiagnostics(cluster.waitForRun(runId, statuses, timeoutMs), () => dockerDiagnostics(`${jobLabels.dataDir}=${agent.dataDir}`)),
  };
}

/** Appends `extra()` to the message of whatever `promise` fails with. */
export async function withDiagnostics<T>(promise: Promise<T>, extra: () => Promise<string>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof Error) {
      const original = error.message;
      error.message += `\n${await extra()}`;
      // The test reporter prints the stack, which holds the message as it was
      // when the error was made: put the extended message there too.
      if (original !== '' && error.stack?.includes(original)) error.stack = error.stack.replace(original, () => error.message);
    }
    throw error;
  }
}

/** Waits until the agent's data dir has exactly `count` job containers, all running; returns them. */
export async function waitForRunningContainers(cluster: DockerCluster, count: number, runId?: string): Promise<ContainerInfo[]> {
  let last: ContainerInfo[] = [];
  return waitUntil(
    `${count} running job container(s) of ${cluster.agent.dataDir}`,
    async () => {
      last = await jobContainersOf(cluster.agent.dataDir);
      return last.length === count && last.every((c) => c.running) ? last : undefined;
    },
    async () => `containers: ${JSON.stringify(last, null, 2)}\n${await cluster.describe(runId)}`,
  );
}

/** Waits until no container of the agent's data dir remains (running or not). */
export async function waitForNoContainers(dataDir: string, describe: () => Promise<string>, timeoutMs = 30_000): Promise<void> {
  let last: ContainerInfo[] = [];
  await waitUntil(
    `no job container of ${dataDir}`,
    async () => {
      last = await jobContainersOf(dataDir);
      return last.length === 0 ? true : undefined;
    },
    async () => `still there: ${JSON.stringify(last, null, 2)}\n${await describe()}`,
    timeoutMs,
  );
}

export interface ClaimedJob {
  readonly job: string;
  readonly run: string;
  readonly kind: string;
}

/** The jobs an agent's log says it claimed (its `job claimed` lines), in order. */
export function claimedJobs(agentLog: string): ClaimedJob[] {
  const jobs: ClaimedJob[] = [];
  for (const line of agentLog.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; job?: string; run?: string; kind?: string };
      if (entry.msg === 'job claimed' && entry.job && entry.run && entry.kind) jobs.push({ job: entry.job, run: entry.run, kind: entry.kind });
    } catch {
      // Not a log line of the agent (the harness's own markers).
    }
  }
  return jobs;
}

/** The job of `kind` an agent claimed for a run; fails with the agent's log when there is none. */
export function claimedJob(agent: AgentHandle, runId: string, kind: 'plan' | 'apply'): ClaimedJob {
  const found = claimedJobs(agent.output()).filter((job) => job.run === runId && job.kind === kind);
  assert.ok(found.length > 0, `agent ${agent.name} claimed no ${kind} job of run ${runId}:\n${agent.output()}`);
  return found[found.length - 1]!;
}

/** The signals Docker delivered to a container since `sinceSeconds` (its `kill` events), e.g. ['2', '9']. */
export async function signalsDelivered(containerId: string, sinceSeconds: number): Promise<string[]> {
  // Now, to the millisecond: a later --until would make docker wait for it.
  const until = (Date.now() / 1000).toFixed(3);
  const events = await docker([
    'events', '--since', String(sinceSeconds), '--until', until,
    '--filter', `container=${containerId}`, '--filter', 'event=kill',
    '--format', '{{index .Actor.Attributes "signal"}}',
  ]);
  return events.split('\n').filter((line) => line.trim() !== '');
}
