// `outpost launcher`: receives a serverless pool's webhook deliveries and
// starts a single-run agent for each job, as a Docker container or a
// Kubernetes Job. Runs until SIGTERM or SIGINT; agents already started run
// on (each ends with its job).
import { loadOrReport } from '../config/settings.ts';
import { createLogger } from '../logging/logger.ts';
import { loadLauncherConfig } from './config.ts';
import { dockerTarget } from './docker-target.ts';
import { kubernetesTarget } from './kubernetes-target.ts';
import { buildLauncherApp } from './receiver.ts';

export async function runLauncherCommand(): Promise<number> {
  const config = loadOrReport('outpost launcher', () => loadLauncherConfig());
  if (config === undefined) return 2;
  const logger = createLogger({ format: config.logFormat, level: 'info', name: 'outpost-launcher' });
  const target = config.target === 'docker' ? dockerTarget(config) : kubernetesTarget(config);
  try {
    await target.running();
  } catch (error) {
    logger.fatal({ err: error }, `the ${config.target} target does not answer; the launcher cannot start agents`);
    return 1;
  }
  const app = buildLauncherApp(config, target, logger);
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (error) {
    logger.fatal({ err: error }, 'the launcher could not listen');
    return 1;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  logger.info({ listen: `${config.listen.host}:${port}`, target: config.target, image: config.image, maxAgents: config.maxAgents }, 'launcher listening');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  logger.info('shutting down; agents already started run on');
  await app.close();
  return 0;
}
