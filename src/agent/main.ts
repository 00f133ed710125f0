// `outpost agent run`: reads the agent's settings once, picks the driver,
// and runs the agent until SIGTERM, SIGINT or SIGHUP (shutdown.ts: drain,
// grace or force, a further signal escalating; after force, exit 130).
// Its exit codes are the table in exit-codes.ts (docs/cli.md, "Exit codes").
import path from 'node:path';
import type { Logger } from 'pino';
import { loadOrReport } from '../config/settings.ts';
import { createLogger } from '../logging/logger.ts';
import { OutpostAgent } from './agent.ts';
import { AgentStoppedError } from './exit-codes.ts';
import type { AgentMetrics } from './agent-metrics.ts';
import { agentExitCodes } from './exit-codes.ts';
import { registryCredentials } from './cache-config.ts';
import { agentUrlIsSet, jobBaseEnvironment, loadAgentConfig, type AgentConfig } from './config.ts';
import { resolvePoolToken, TokenSourceError } from './token-source.ts';
import { ControlPlaneClient } from './control-plane-client.ts';
import { DriverUnavailableError, selectDriver } from './drivers/select-driver.ts';
import type { Driver } from './drivers/driver.ts';
import { EngineCache } from './engines/engine-cache.ts';
import { EngineSourceBuild } from './engines/engine-source-build.ts';
import type { HealthServer } from './health-server.ts';
import { jobMemoryLimit } from './memory-limit.ts';
import type { ProviderMirror } from './providers/provider-mirror.ts';
import { startProviderMirror } from './providers/provider-cache-setup.ts';
import { PlanWorkdirs } from './plan-workdirs.ts';
import { AgentShutdown } from './shutdown.ts';
import { TaskHandleStore } from './task-handles.ts';

/** Wires an agent from its settings; `outpost quickstart` runs one in-process too. */
export async function createAgent(
  configured: AgentConfig,
  logger: Logger,
): Promise<{ agent: OutpostAgent; client: ControlPlaneClient; metrics: AgentMetrics | undefined; close(): Promise<void> }> {
  const baseEnv = jobBaseEnvironment();
  const { driver, dataDir, role } = await selectDriver(configured, logger);
  // The docker driver may settle on another data dir (a host mount): the default cache dir follows it.
  const cacheDir = configured.cacheDir ?? path.join(dataDir, 'cache');
  const config = { ...configured, dataDir, cacheDir };
  const client = new ControlPlaneClient(config.url, logger);
  const sourceBuild =
    config.engineBuild === 'auto'
      ? new EngineSourceBuild({ dir: config.engineBuildDir, go: { configured: config.goBinary, searchPath: baseEnv.PATH }, logger })
      : undefined;
  const engines = new EngineCache({
    dir: path.join(cacheDir, 'binaries'),
    mirror: config.binaryMirror,
    localPath: config.enginePath,
    searchPath: baseEnv.PATH,
    downloadTimeoutMs: config.downloadTimeout,
    logger,
    sizeLimitBytes: config.binaryCacheSizeLimitMb * 1024 * 1024,
    unusedThresholdMs: config.binaryCacheThresholdDays * 24 * 60 * 60_000,
    sourceBuild,
  });
  // In the background: start-up need not wait, and evict() logs its own failures.
  void engines.evict('agent start');
  const handles = new TaskHandleStore(config.dataDir);
  // Counted only when something can read them: the health listener is on.
  // prom-client (and Fastify, for the listener) is loaded only then.
  const metrics = config.healthPort > 0 ? new (await import('./agent-metrics.ts')).AgentMetrics() : undefined;
  const providers = await providerMirrorFor(config, driver, logger, metrics);
  const memoryLimit = jobMemoryLimit(config, driver.name, logger);
  // A single-mode agent runs one job and exits: nothing it kept would be used.
  const planWorkdirs = new PlanWorkdirs({
    dir: path.join(config.dataDir, 'plan-workdirs'),
    ttlMs: config.single ? 0 : config.planWorkdirTtl,
    maxEntries: Math.max(2, config.concurrency),
    logger,
  });
  await planWorkdirs.start();
  return {
    // A job pod's environment is its template's (task.extraEnv, the proxy,
    // the CA): the worker's own (its extraEnv, its pod's names) stays in it.
    agent: new OutpostAgent({ config, client, driver, engines, logger, baseEnv: driver.name === 'kubernetes' ? {} : baseEnv, handles, providers, metrics, memoryLimit, planWorkdirs, role }),
    client,
    metrics,
    close: async () => {
      sourceBuild?.close();
      planWorkdirs.stop();
      await providers?.close();
      await client.close();
    },
  };
}

/** The provider cache's mirror, when it is on and the driver's sandboxes can reach it on 127.0.0.1. */
async function providerMirrorFor(
  config: AgentConfig & { cacheDir: string },
  driver: Driver,
  logger: Logger,
  metrics: AgentMetrics | undefined,
): Promise<ProviderMirror | undefined> {
  if (!config.providerCacheEnabled) {
    logger.info('provider cache off (OUTPOST_AGENT_PROVIDER_CACHE_ENABLED=false): each job downloads its providers');
    return undefined;
  }
  if (!driver.capabilities().sharesAgentLoopback) {
    if (config.driver === 'kubernetes') {
      logger.info('provider cache off: job pods cannot reach the agent on 127.0.0.1; each job downloads its providers (OUTPOST_AGENT_PROVIDER_NETWORK_MIRRORS names a mirror they can reach)');
    } else {
      logger.warn(
        { network: config.containerNetwork },
        'provider cache off: job containers on this network cannot reach the agent on 127.0.0.1 (use OUTPOST_AGENT_CONTAINER_NETWORK=auto or host)',
      );
    }
    return undefined;
  }
  return startProviderMirror(
    {
      cacheDir: config.cacheDir,
      sizeLimitMb: config.providerCacheSizeLimitMb,
      versionsTtlMs: config.providerCacheVersionsTtl,
      networkMirrors: config.providerNetworkMirrors ?? [],
      registryServices: config.providerRegistryServices ?? {},
      registryCredentials: registryCredentials(),
      caCert: config.caCert,
      downloadTimeoutMs: config.downloadTimeout,
      port: config.providerMirrorPort,
      onServe: (result) => metrics?.providerServed(result),
    },
    logger,
  );
}

export async function runAgentCommand(): Promise<number> {
  const loaded = loadOrReport('outpost agent', () => loadAgentConfig());
  if (loaded === undefined) return agentExitCodes.invalidConfiguration;
  const logger = createLogger({ format: loaded.logFormat, level: loaded.logLevel, name: 'outpost-agent' });
  if (!loaded.token) {
    logger.fatal('no pool token: set OUTPOST_AGENT_TOKEN (or SCALR_AGENT_TOKEN) to a token created with `outpost pool token create`, or OUTPOST_AGENT_TOKEN_FILE to a file holding it');
    return agentExitCodes.invalidConfiguration;
  }
  let config: AgentConfig;
  try {
    config = await resolvePoolToken(loaded, agentUrlIsSet());
  } catch (error) {
    if (!(error instanceof TokenSourceError)) throw error;
    logger.fatal(error.message);
    return error.configuration ? agentExitCodes.invalidConfiguration : agentExitCodes.failed;
  }
  let created: Awaited<ReturnType<typeof createAgent>>;
  try {
    created = await createAgent(config, logger);
  } catch (error) {
    if (error instanceof DriverUnavailableError) {
      logger.fatal(error.message);
      return agentExitCodes.invalidConfiguration;
    }
    throw error;
  }
  const { agent, close } = created;
  // Up before registration, so probes see a live process that is not ready yet.
  let health: HealthServer | undefined;
  if (created.metrics) {
    try {
      const { startHealthServer } = await import('./health-server.ts');
      health = await startHealthServer({ host: config.healthHost, port: config.healthPort, status: () => agent.status(), metrics: created.metrics, logger });
    } catch (error) {
      logger.fatal({ err: (error as Error).message, host: config.healthHost, port: config.healthPort }, 'the health listener could not start (OUTPOST_AGENT_HEALTH_HOST / OUTPOST_AGENT_HEALTH_PORT)');
      await close();
      return agentExitCodes.failed;
    }
  }
  // Drain, grace or force (OUTPOST_AGENT_WORKER_ON_STOP_ACTION); each further signal goes one step on.
  const shutdown = new AgentShutdown(
    agent,
    { action: config.onStopAction, drainTimeoutMs: config.drainTimeout, graceTimeoutMs: config.graceShutdownTimeout },
    logger,
    (code) => process.exit(code),
  );
  const onSignal = (signal: NodeJS.Signals) => shutdown.onSignal(signal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    return await agent.run();
  } catch (error) {
    if (error instanceof AgentStoppedError) {
      logger.fatal(error.message);
      return error.exitCode;
    }
    logger.fatal({ err: error }, 'agent failed');
    return agentExitCodes.failed;
  } finally {
    shutdown.dispose();
    await health?.close();
    await close();
  }
}
