// A server the job containers (and the agent in a container) can reach: on
// the Docker bridge's gateway address rather than loopback.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { registerProcessCleanup, type ServerHandle, type TestHooks } from './cluster.ts';
import { cliCommand, generateAdminToken, serverEnvironment } from './cluster-environment.ts';
import { callApi } from './json-api-client.ts';
import { freePort } from './ports.ts';
import { logTail, readLog as readSpawnedLog, spawnLogged, type SpawnedProcess } from './spawned-process.ts';

import { docker } from './docker-cluster.ts';

/**
 * The address containers on Docker's default bridge reach the host at: the
 * bridge's gateway (usually 172.17.0.1). Some daemons leave the gateway out
 * of `docker network inspect`; then it is the bridge interface's address.
 */
export async function bridgeGateway(): Promise<string> {
  const network = JSON.parse(await docker(['network', 'inspect', 'bridge'])) as {
    IPAM: { Config: { Gateway?: string; Subnet?: string }[] | null };
    Options?: Record<string, string>;
  }[];
  const bridge = network[0];
  const configured = bridge?.IPAM.Config?.find((config) => config.Gateway)?.Gateway;
  if (configured) return configured;
  const interfaceName = bridge?.Options?.['com.docker.network.bridge.name'] ?? 'docker0';
  const address = os.networkInterfaces()[interfaceName]?.find((entry) => entry.family === 'IPv4')?.address;
  if (address) return address;
  // The interface is down while no container uses it (Node lists only
  // interfaces that are up): Docker gives the gateway the subnet's first address.
  const subnet = bridge?.IPAM.Config?.find((config) => config.Subnet?.includes('.'))?.Subnet;
  const match = subnet ? /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(subnet) : null;
  assert.ok(match, `cannot tell the bridge gateway: ${JSON.stringify(network)}`);
  const [a, b, c, d, bits] = match.slice(1).map(Number) as [number, number, number, number, number];
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const first = ((((a << 24) | (b << 16) | (c << 8) | d) & mask) >>> 0) + 1;
  return [first >>> 24, (first >>> 16) & 255, (first >>> 8) & 255, first & 255].join('.');
}

export interface ContainerReachableServer {
  readonly server: ServerHandle;
  /** The server's URL as containers on the default bridge reach it. */
  readonly containerUrl: string;
}

/**
 * The real server (SQLite), listening on every interface so that containers
 * reach it through the bridge gateway, as in the Scalr agent's recipes; its process
 * is killed and its temp dir removed when the test ends. (startServer binds
 * 127.0.0.1 only.)
 */
export async function startContainerReachableServer(t: TestHooks, extraEnv: Readonly<Record<string, string>> = {}): Promise<ContainerReachableServer> {
  return startServerReachableAt(t, await bridgeGateway(), extraEnv);
}

/**
 * The real server (SQLite), listening on every interface, whose public URL
 * (the one pool tokens carry and jobs use) is at `host`: the Docker bridge's
 * gateway for containers, the node's address for pods.
 */
export async function startServerReachableAt(t: TestHooks, host: string, extraEnv: Readonly<Record<string, string>> = {}): Promise<ContainerReachableServer> {
  const gateway = host;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-server-'));
  const logFile = path.join(dir, 'server.log');
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const adminToken = generateAdminToken();
  // The public URL is the one containers use: pool tokens carry it, so the
  // Scalr agent's command (token only, no URL) finds the server.
  const env = serverEnvironment({
    dataDir,
    port,
    adminToken,
    extra: { OUTPOST_LISTEN: `0.0.0.0:${port}`, OUTPOST_PUBLIC_URL: `http://${gateway}:${port}`, ...extraEnv },
  });
  const launch = (): SpawnedProcess => spawnLogged({ ...cliCommand(['server']), env, cwd: dir, logFile });
  let current = launch();
  let cleanedUp = false;
  const server: ServerHandle = {
    url,
    adminToken,
    backend: 'sqlite',
    dataDir,
    logFile,
    database: undefined,
    get process() {
      return current.child;
    },
    output: () => readSpawnedLog(logFile),
    stop: (signal) => current.stop(signal),
    kill: () => current.kill(),
    async restart() {
      await current.stop();
      await current.killGroup();
      current = launch();
      await waitForHealthy(url, current, logFile);
    },
    api: (method, urlPath, body, options) => callApi(url, adminToken, method, urlPath, body, options),
    async cleanup() {
      if (cleanedUp) return;
      cleanedUp = true;
      await current.killGroup();
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  registerProcessCleanup(t, server);
  await waitForHealthy(url, current, logFile);
  return { server, containerUrl: `http://${gateway}:${port}` };
}

async function waitForHealthy(url: string, server: SpawnedProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (server.hasExited()) assert.fail(`the server exited (code ${await server.exited}) before answering /healthz:\n${logTail(logFile)}`);
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`the server did not answer ${url}/healthz within 30 s (last: ${last}):\n${logTail(logFile)}`);
}

