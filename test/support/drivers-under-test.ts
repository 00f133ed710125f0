// The drivers under conformance test: each entry makes a fresh driver over
// a data dir, as a (re)started agent would. The docker driver needs a Docker
// daemon and the runner image: CI builds both, so there it must be present;
// elsewhere its suite is skipped with the reason.
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import type { Driver } from '../../src/agent/drivers/driver.ts';
import { DockerDriver } from '../../src/agent/drivers/docker/docker-driver.ts';
import { detectPlacement } from '../../src/agent/drivers/docker/placement.ts';
import { KubeApi, loadKubeConfig } from '../../src/agent/drivers/kubernetes/kube-api.ts';
import { KubernetesDriver } from '../../src/agent/drivers/kubernetes/kubernetes-driver.ts';
import { LocalDriver } from '../../src/agent/drivers/local/local-driver.ts';
import { clusterAgentImage, kubernetesUnavailable } from './kubernetes-cluster.ts';
import { dockerClient } from '../../src/agent/drivers/select-driver.ts';

export const runnerImage = process.env.OUTPOST_TEST_RUNNER_IMAGE ?? 'outpost/runner:latest';

export interface DriverUnderTest {
  name: string;
  /** Why the suite cannot run here, if it cannot. */
  unavailable: string | undefined;
  create(dataDir: string): Promise<Driver>;
}

function dockerUnavailable(): string | undefined {
  try {
    execFileSync('docker', ['image', 'inspect', runnerImage], { stdio: 'ignore', timeout: 10_000 });
    return undefined;
  } catch {
    const reason = `no Docker daemon with the image ${runnerImage} (run scripts/build-images.sh --local-bases)`;
    if (process.env.CI === 'true') throw new Error(`CI must test the docker driver, but there is ${reason}`);
    return reason;
  }
}

/** A docker driver over `dataDir`, as an agent on this host would make it; its job containers on `networkMode`. */
export async function createDockerDriver(dataDir: string, networkMode = 'host'): Promise<DockerDriver> {
  const docker = await dockerClient('unix:///var/run/docker.sock');
  return new DockerDriver({
    docker,
    placement: await detectPlacement(docker),
    dataDir,
    logger: pino({ level: 'silent' }),
    settings: { image: runnerImage, user: { uid: 1000, gid: 1000 }, cpuCores: 1, memoryMb: 256, pidsLimit: 256, networkMode },
  });
}

/** A kubernetes driver running its pods on the test cluster, this host being its node. */
export function createKubernetesDriver(dataDir: string): KubernetesDriver {
  return new KubernetesDriver({
    api: new KubeApi(loadKubeConfig(), 'default'),
    mode: 'direct',
    instance: 'conformance',
    dataDir,
    nodePaths: 'all',
    template: { spec: { containers: [] } },
    defaultImage: clusterAgentImage,
    jobUser: { uid: 1000, gid: 1000 },
    startupTimeoutMs: 60_000,
    podTtlMs: 0,
    logger: pino({ level: 'silent' }),
  });
}

export const driversUnderTest: DriverUnderTest[] = [
  { name: 'local', unavailable: undefined, create: async (dataDir) => new LocalDriver({ dataDir }) },
  { name: 'docker', unavailable: dockerUnavailable(), create: (dataDir) => createDockerDriver(dataDir) },
  { name: 'kubernetes', unavailable: kubernetesUnavailable(), create: async (dataDir) => createKubernetesDriver(dataDir) },
];
