// The container a job runs in, as Docker Engine API create options. Pure, so
// the choices (mounts, limits, user, network, labels) are unit-testable.
import type { ContainerCreateOptions } from 'dockerode';
import type { TaskSpec } from '../driver.ts';
import type { SharedMount } from './shared-files.ts';

export const labels = {
  managed: 'io.outpost.managed',
  agentId: 'io.outpost.agent-id',
  jobId: 'io.outpost.job-id',
  /** Host path of the agent's data dir: an agent owns the containers of its data dir. */
  dataDir: 'io.outpost.data-dir',
} as const;

export interface ContainerSettings {
  image: string;
  user: { uid: number; gid: number };
  cpuCores: number;
  memoryMb: number;
  /** Most processes and threads in the container (a fork bomb stops there, not at the host's limit). */
  pidsLimit: number;
  /** `host`, `bridge`, a network name, or `container:<id>`. */
  networkMode: string;
  hostDataDir: string;
}

export function containerName(jobId: string): string {
  return `outpost-${jobId}`;
}

/** Where the job directory and the shared files appear inside every job container. */
export const containerJobDir = '/outpost/job';
const containerSharedDir = '/outpost/shared';

/**
 * Agent paths → container paths. Fixed, neutral locations: the agent's own
 * paths may sit under directories the runner user cannot traverse (/root).
 */
export function pathMapping(spec: TaskSpec): Map<string, string> {
  const mapping = new Map<string, string>([[spec.workdir, containerJobDir]]);
  spec.shared.forEach((file, index) => mapping.set(file, `${containerSharedDir}/${index}-${file.split('/').pop() ?? 'file'}`));
  return mapping;
}

/** Rewrites a value that is, or starts with, a mapped agent path. */
export function translatePath(value: string, mapping: ReadonlyMap<string, string>): string {
  let best: [string, string] | undefined;
  for (const entry of mapping) {
    const [from] = entry;
    if ((value === from || value.startsWith(`${from}/`)) && (!best || from.length > best[0].length)) best = entry;
  }
  return best ? best[1] + value.slice(best[0].length) : value;
}

export function containerOptions(spec: TaskSpec, workdirHostPath: string, shared: readonly SharedMount[], settings: ContainerSettings): ContainerCreateOptions {
  const memory = settings.memoryMb * 1024 * 1024;
  const mapping = pathMapping(spec);
  const inContainer = (value: string) => translatePath(value, mapping);
  return {
    name: containerName(spec.jobId),
    Image: settings.image,
    // Through the image's shell, as documented (a runner image must have
    // one: provisioners need it too), so a shell-less image fails at once.
    // Its stderr goes to stdout: one stream, in the order written, which the
    // container's log replays byte for byte when an agent that restarted
    // re-attaches (two streams are merged in a different order there).
    Entrypoint: ['/bin/sh', '-c', 'exec "$@" 2>&1', 'outpost-job'],
    Cmd: spec.command.map(inContainer),
    Env: Object.entries(spec.env).map(([key, value]) => `${key}=${inContainer(value)}`),
    WorkingDir: containerJobDir,
    User: `${settings.user.uid}:${settings.user.gid}`,
    Labels: {
      [labels.managed]: 'true',
      [labels.agentId]: spec.agentId,
      [labels.jobId]: spec.jobId,
      [labels.dataDir]: settings.hostDataDir,
    },
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    HostConfig: {
      Binds: [
        `${workdirHostPath}:${containerJobDir}:rw`,
        ...shared.map((mount) => `${mount.hostPath}:${inContainer(mount.containerPath)}:ro`),
      ],
      // tini as PID 1: forwards SIGINT to the operation and reaps the
      // engine's orphaned children.
      Init: true,
      NanoCpus: Math.round(settings.cpuCores * 1e9),
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: settings.pidsLimit,
      NetworkMode: settings.networkMode,
      // Jobs run untrusted configurations: no new privileges, no capabilities.
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      AutoRemove: false,
    },
  };
}
