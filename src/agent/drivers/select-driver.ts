// Picks the driver: the one configured, or with `auto` the docker driver when
// a Docker daemon answers and the local driver otherwise, saying why either
// way (the kubernetes driver is only ever asked for). For the docker driver it also settles the data dir, which must be a
// host mount when the agent itself runs in a container. dockerode is loaded
// only once the docker driver is chosen: the local driver never needs it.
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import path from 'node:path';
import type { AgentRole } from '../agent-deps.ts';
import type { AgentConfig } from '../config.ts';
import type { Driver } from './driver.ts';
import { DockerDriver } from './docker/docker-driver.ts';
import { pingDocker } from './docker/docker-ping.ts';
import { detectPlacement, hostPathOf, type Placement } from './docker/placement.ts';
import { LocalDriver } from './local/local-driver.ts';

/** A driver was asked for but cannot work here; the agent exits with a configuration error. */
export class DriverUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DriverUnavailableError';
  }
}

/** Data dirs the Scalr agent's recipes and ours mount at the same path on host and in the agent container. */
const conventionalDataDirs = ['/var/lib/outpost-agent', '/var/lib/scalr-agent'];

export async function dockerClient(dockerHost: string): Promise<Docker> {
  const { default: Docker } = await import('dockerode');
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' });
}

export async function selectDriver(config: AgentConfig, logger: Logger): Promise<{ driver: Driver; dataDir: string; role?: AgentRole }> {
  // The kubernetes driver comes with the part the agent plays; the Kubernetes client loads only here.
  if (config.driver === 'kubernetes') {
    const { kubernetesAgentParts, KubernetesUnavailableError } = await import('../kubernetes/setup.ts');
    try {
      return { ...(await kubernetesAgentParts(config, config.cacheDir ?? path.join(config.dataDir, 'cache'), logger)), dataDir: config.dataDir };
    } catch (error) {
      throw error instanceof KubernetesUnavailableError ? new DriverUnavailableError(error.message) : error;
    }
  }
  if (config.driver === 'local') {
    logger.info({ driver: 'local', reason: 'OUTPOST_AGENT_DRIVER=local' }, 'driver selected');
    return { driver: new LocalDriver({ dataDir: config.dataDir }), dataDir: config.dataDir };
  }
  const failure = await pingDocker(config.dockerHost);
  if (failure !== undefined) {
    if (config.driver === 'docker') {
      throw new DriverUnavailableError(
        `OUTPOST_AGENT_DRIVER=docker, but the Docker daemon at ${config.dockerHost} does not answer (${failure}). ` +
          'Mount its socket into the agent container (-v /var/run/docker.sock:/var/run/docker.sock) and make sure the agent may use it, or set DOCKER_HOST.',
      );
    }
    logger.info({ driver: 'local', reason: `no Docker daemon answers at ${config.dockerHost} (${failure})` }, 'driver selected');
    return { driver: new LocalDriver({ dataDir: config.dataDir }), dataDir: config.dataDir };
  }
  const docker = await dockerClient(config.dockerHost);
  const placement = await detectPlacement(docker);
  const dataDir = mountedDataDir(placement, config.dataDir);
  const driver = new DockerDriver({
    docker,
    placement,
    dataDir,
    logger,
    settings: {
      image: config.containerTaskImage,
      user: config.containerTaskUser,
      cpuCores: config.containerTaskCpuLimit,
      memoryMb: config.containerTaskMemLimit,
      pidsLimit: config.containerTaskPidsLimit,
      networkMode: config.containerNetwork === 'auto' ? (placement.containerId ? `container:${placement.containerId}` : 'host') : config.containerNetwork,
    },
  });
  const { detail } = await driver.fingerprint();
  logger.info(
    { driver: 'docker', reason: `${config.driver === 'docker' ? 'OUTPOST_AGENT_DRIVER=docker' : 'a Docker daemon answers'} at ${config.dockerHost} (${detail})`, image: config.containerTaskImage, dataDir, inContainer: placement.containerId !== undefined },
    'driver selected',
  );
  return { driver, dataDir };
}

/**
 * The data dir job containers can mount. In a container it must come from
 * the host; when the configured one does not, a conventional one that does is
 * used (so the Scalr agent's `-v /var/lib/scalr-agent:/var/lib/scalr-agent` works).
 */
function mountedDataDir(placement: Placement, configured: string): string {
  if (hostPathOf(placement, configured) !== undefined) return configured;
  const mounted = conventionalDataDirs.find((dir) => placement.binds.some((bind) => bind.destination === dir));
  if (mounted) return mounted;
  throw new DriverUnavailableError(
    `the docker driver needs the data dir on a host mount, and ${configured} is not one. ` +
      `Start the agent container with -v ${configured}:${configured} (the same path on both sides), or set OUTPOST_AGENT_DATA_DIR to a mounted directory.`,
  );
}
