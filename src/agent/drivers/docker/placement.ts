// Where the agent runs relative to the Docker daemon it drives. Job
// containers are created by the daemon, so every path they mount must be a
// path on the daemon's host. On the host the agent's paths are host paths;
// inside a container they are translated through the agent container's own
// bind mounts (the Scalr agent's installation guide mounts the data dir at
// the same path on both sides, but any bind mount works).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';

export interface BindMount {
  /** Path on the daemon's host. */
  source: string;
  /** Path inside the agent container. */
  destination: string;
}

export interface Placement {
  /** The agent's own container, when it runs in one this daemon manages. */
  containerId: string | undefined;
  binds: readonly BindMount[];
}

/** The id of the container this process runs in, from the paths Docker mounts into every container. */
export async function ownContainerId(mountinfo = '/proc/self/mountinfo'): Promise<string | undefined> {
  const text = await readFile(mountinfo, 'utf8').catch(() => '');
  return /\/containers\/([0-9a-f]{64})\//.exec(text)?.[1];
}

export async function detectPlacement(docker: Docker): Promise<Placement> {
  const id = await ownContainerId();
  if (!id) return { containerId: undefined, binds: [] };
  try {
    const info = await docker.getContainer(id).inspect();
    const binds = (info.Mounts ?? [])
      .filter((m) => m.Type === 'bind' || m.Type === 'volume')
      .map((m) => ({ source: m.Source, destination: m.Destination }));
    return { containerId: id, binds };
  } catch {
    // In a container, but not one of this daemon (Docker-in-Docker, a pod):
    // this daemon shares our file system view, as far as we can tell.
    return { containerId: undefined, binds: [] };
  }
}

/** The host path of a path as the agent sees it, or undefined when it exists only in the agent container. */
export function hostPathOf(placement: Placement, agentPath: string): string | undefined {
  if (placement.containerId === undefined) return agentPath;
  let best: BindMount | undefined;
  for (const bind of placement.binds) {
    const inside = agentPath === bind.destination || agentPath.startsWith(`${bind.destination.replace(/\/$/, '')}/`);
    if (inside && (!best || bind.destination.length > best.destination.length)) best = bind;
  }
  if (!best) return undefined;
  return path.join(best.source, path.relative(best.destination, agentPath));
}
