// Agents as containers on this host's Docker Engine: removed by the daemon
// when they exit (AutoRemove), capped in CPU and memory, without new
// privileges. The daemon is found as the docker CLI finds it (DOCKER_HOST,
// else its socket).
import Docker from 'dockerode';
import type { LauncherConfig } from './config.ts';
import { agentTokenOf } from './config.ts';
import { agentEnvironment, agentNameFor, LaunchError, launchLabels, type Launched, type LaunchRequest, type LaunchTarget } from './target.ts';

const ownerLabel = 'app.kubernetes.io/managed-by=outpost-launcher';

export function dockerTarget(config: LauncherConfig, docker: Docker = new Docker()): LaunchTarget {
  return {
    kind: 'docker',
    async running() {
      const containers = await docker.listContainers({ all: true, filters: { label: [ownerLabel], status: ['created', 'running', 'restarting'] } });
      return containers.length;
    },
    async launch(request: LaunchRequest): Promise<Launched> {
      const name = agentNameFor(request.deliveryId);
      const env = { ...agentEnvironment(request, config.agentEnv ?? {}), OUTPOST_AGENT_TOKEN: agentTokenOf(config) };
      let container: Docker.Container;
      try {
        container = await docker.createContainer({
          name,
          Image: config.image,
          Cmd: ['run'],
          Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
          Labels: launchLabels(request),
          HostConfig: {
            AutoRemove: true,
            Memory: config.memory,
            NanoCpus: Math.round(config.cpus * 1e9),
            SecurityOpt: ['no-new-privileges'],
            ...(config.network ? { NetworkMode: config.network } : {}),
            ...(config.volumes ? { Binds: config.volumes } : {}),
          },
        });
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 409) return { id: name, duplicate: true };
        if (status === 404) throw new LaunchError(`the image ${config.image} is not on this Docker host: pull or build it (OUTPOST_LAUNCHER_IMAGE names it)`);
        throw new LaunchError(`Docker refused to create the agent container: ${(error as Error).message}`);
      }
      try {
        await container.start();
      } catch (error) {
        await container.remove({ force: true }).catch(() => undefined);
        throw new LaunchError(`Docker could not start the agent container: ${(error as Error).message}`);
      }
      return { id: container.id, duplicate: false };
    },
  };
}
