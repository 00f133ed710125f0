// `outpost job`: the job operation. Runs inside the driver's sandbox, started
// by the agent with the OUTPOST_JOB_* environment (see config.ts); its stdout
// and stderr become the run log, its exit code tells the agent the outcome.
import { ConfigError } from '../config/settings.ts';
import { jobExitCodes } from '../protocol/statuses.ts';
import { Cancellation, cancelOnSignals } from './cancellation.ts';
import { inheritedEnvironment, loadJobConfig, type JobConfig } from './config.ts';
import { ControlPlaneTransport } from './control-plane-transport.ts';
import { JobApi } from './job-api.ts';
import { asOutpostError, runJobOperation } from './job-operation.ts';
import { RunLog } from './run-log.ts';

export async function runJobCommand(): Promise<number> {
  const log = new RunLog((text) => process.stdout.write(text));
  const cancellation = new Cancellation();
  // Installed first, so a cancel that arrives while we start up is not lost.
  const restoreSignals = cancelOnSignals(cancellation, (signal) => {
    if (!cancellation.requested) log.info(`received ${signal}: canceling the job`);
  });
  let config: JobConfig;
  try {
    config = loadJobConfig();
  } catch (error) {
    // Without the server URL or token there is nobody to report to; the
    // agent sees the exit code and this line in the log.
    const message = error instanceof ConfigError ? error.message : asOutpostError(error).message;
    log.error(`outpost job was started without a usable environment: ${message}`, 'validation_failed');
    restoreSignals();
    return jobExitCodes.failed;
  }
  const transport = new ControlPlaneTransport({
    baseUrl: config.serverUrl,
    token: config.token,
    proxy: { httpProxy: config.httpProxy, httpsProxy: config.httpsProxy, noProxy: config.noProxy },
    onRetry: (message) => log.info(message),
  });
  try {
    return await runJobOperation({ config, inherited: inheritedEnvironment(), api: new JobApi(transport), log, cancellation });
  } finally {
    restoreSignals();
    await transport.close();
  }
}
