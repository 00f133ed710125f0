// `outpost quickstart` (what `npm start` runs): a control plane on its
// embedded defaults and one local-driver agent in this process, then the
// bundled example configuration planned and applied with the live log and
// the outputs; then it keeps serving and says how to queue more runs.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAgent } from '../agent/main.ts';
import { ConfigError } from '../config/settings.ts';
import { createLogger } from '../logging/logger.ts';
import { startServer } from '../server/main.ts';
import { ApiClient } from './api-client.ts';
import { ApiError } from './api-error.ts';
import { exitCodeForRun, describeRunOutcome, fetchCurrentOutputs, formatStateOutputs } from './run-report.ts';
import { followRun } from './run-follow.ts';
import { startRun } from './run-start.ts';
import { loadQuickstartConfig, type QuickstartConfig } from './quickstart-config.ts';

const exampleDir = fileURLToPath(new URL('../../examples/hello', import.meta.url));
const poolName = 'quickstart';
const workspaceName = 'example';

export async function runQuickstartCommand(): Promise<number> {
  let config: QuickstartConfig;
  try {
    config = loadQuickstartConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`outpost quickstart: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const say = (line = '') => process.stdout.write(`${line}\n`);
  // Component logs would interleave with the run's own log: warnings only.
  const logger = createLogger({ format: 'text', level: 'warn', name: 'outpost' });
  const server = await startServer(config.server, logger.child({ component: 'server' }));
  const adminToken = server.generatedAdminToken ?? (await server.issueApiToken('outpost quickstart'));
  say(`Outpost control plane on ${server.url} (SQLite and files in ${config.server.dataDir})`);

  const api = new ApiClient({ url: server.url, token: adminToken });
  const org = 'default';
  const pool = (await api.listPools(org)).find((p) => p.attributes.name === poolName) ?? (await api.createPool(org, poolName));
  const poolToken = await api.createPoolToken(pool.id, 'outpost quickstart agent');
  const workspace =
    (await api.listWorkspaces(org)).find((w) => w.attributes.name === workspaceName) ??
    (await api.createWorkspace(org, { name: workspaceName, 'agent-pool-id': pool.id, 'auto-apply': true }));

  const builtEngine = path.join(config.toolchainCache, `tofu-${workspace.attributes['terraform-version']}`);
  const agentConfig = {
    ...config.agent,
    url: server.url,
    token: String(poolToken.attributes.token),
    enginePath: config.agent.enginePath ?? (existsSync(builtEngine) ? builtEngine : undefined),
  };
  // The agent's warnings (such as an offline engine download) are in the run log already.
  const { agent, client } = await createAgent({ ...agentConfig, driver: 'local' }, createLogger({ format: 'text', level: 'error', name: 'outpost-agent' }));
  const agentDone = agent.run();
  say(`Agent "${agentConfig.name}" joined pool ${poolName} (local driver, data in ${agentConfig.dataDir})`);
  say(`Running examples/hello in workspace ${workspaceName}: plan, then apply`);
  say('');

  let exitCode = 0;
  try {
    const { run } = await startRun(api, { workspaceId: workspace.id, directory: exampleDir, message: 'outpost quickstart', autoApply: true });
    const final = await followRun(api, run.id, { write: (chunk) => process.stdout.write(chunk) });
    say('');
    say(describeRunOutcome(final));
    const outputs = await fetchCurrentOutputs(api, workspace.id).catch(() => []);
    for (const line of formatStateOutputs(outputs)) say(line);
    exitCode = exitCodeForRun(final);
  } catch (error) {
    const detail = error instanceof ApiError ? `${error.message} [${error.code}]` : (error as Error).message;
    say(`The example run could not complete: ${detail}`);
    exitCode = 1;
  }

  say('');
  say(`Outpost keeps serving on ${server.url}. Queue more runs from another terminal:`);
  say('');
  say(`  export OUTPOST_URL=${server.url}`);
  say(`  export OUTPOST_TOKEN=${adminToken}   # an admin API token; shown only here`);
  say(`  npx outpost run examples/hello --workspace ${workspaceName}`);
  say(`  npx outpost run --help`);
  say('');
  say('Press Ctrl-C to stop.');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  say('Stopping: waiting for running jobs, then shutting down.');
  agent.stop();
  await agentDone.catch(() => 1);
  await client.close();
  await server.close();
  return exitCode === 0 ? 0 : exitCode;
}
