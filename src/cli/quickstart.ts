// `outpost quickstart` (what `npm start` runs): a control plane on its
// embedded defaults and one local-driver agent in this process, then the
// bundled example configuration planned and applied with the live log and
// the outputs; then it keeps serving and says how to queue more runs.
import { fileURLToPath } from 'node:url';
import { createAgent } from '../agent/main.ts';
import { AgentShutdown } from '../agent/shutdown.ts';
import { loadOrReport } from '../config/settings.ts';
import { createLogger } from '../logging/logger.ts';
import { startServer } from '../server/main.ts';
import { ApiClient } from './api-client.ts';
import { ApiError } from './api-error.ts';
import { exitCodes } from './exit-codes.ts';
import { describeRunOutcome, fetchCurrentOutputs, formatStateOutputs } from './run-report.ts';
import { followRun } from './run-follow.ts';
import { startRun } from './run-start.ts';
import { loadQuickstartConfig } from './quickstart-config.ts';

const exampleDir = fileURLToPath(new URL('../../examples/hello', import.meta.url));
const poolName = 'quickstart';
const workspaceName = 'example';

export async function runQuickstartCommand(): Promise<number> {
  const config = loadOrReport('outpost quickstart', () => loadQuickstartConfig());
  if (config === undefined) return exitCodes.usage;
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

  const agentConfig = { ...config.agent, url: server.url, token: String(poolToken.attributes.token) };
  // The agent's warnings (such as an offline engine download) are in the run log already.
  const agentLogger = createLogger({ format: 'text', level: 'error', name: 'outpost-agent' });
  const { agent, close: closeAgent } = await createAgent({ ...agentConfig, driver: 'local' }, agentLogger);
  const agentDone = agent.run();

  // From here on Ctrl-C (or SIGTERM) stops: the agent's stop mode first (a
  // job in hand is interrupted at a safe point), a second signal kills it.
  const shutdown = new AgentShutdown(agent, config.stop, logger.child({ component: 'agent' }), (code) => process.exit(code));
  let signalled: (() => void) | undefined;
  const stopRequested = new Promise<'stop'>((resolve) => (signalled = () => resolve('stop')));
  const onSignal = (signal: NodeJS.Signals) => {
    if (shutdown.step === undefined) say(`\nStopping (${signal}): ${agent.runningJobIds().length > 0 ? 'interrupting the running job; press Ctrl-C again to kill it' : 'no job is running'}.`);
    signalled?.();
    shutdown.onSignal(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  say(`Agent "${agentConfig.name}" joined pool ${poolName} (local driver, data in ${agentConfig.dataDir})`);
  say(`Running examples/hello in workspace ${workspaceName}: plan, then apply`);
  say('');
  await runExample(api, workspace.id, say, stopRequested);

  if (shutdown.step === undefined) {
    say('');
    say(`Outpost keeps serving on ${server.url}. Queue more runs from another terminal:`);
    say('');
    say(`  export OUTPOST_URL=${server.url}`);
    say(`  export OUTPOST_TOKEN=${adminToken}   # an admin API token; shown only here`);
    say(`  npx outpost run examples/hello --workspace ${workspaceName}`);
    say(`  npx outpost run --help`);
    say('');
    say('Press Ctrl-C to stop.');
    await stopRequested;
  }
  const code = await agentDone.catch(() => 1);
  shutdown.dispose();
  await closeAgent();
  await server.close();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return code;
}

/** Plans and applies the example, following its log, until it settles or a stop is asked for. */
async function runExample(api: ApiClient, workspaceId: string, say: (line?: string) => void, stopRequested: Promise<'stop'>): Promise<void> {
  try {
    const { run } = await startRun(api, { workspaceId, directory: exampleDir, message: 'outpost quickstart', autoApply: true });
    const following = followRun(api, run.id, { write: (chunk) => process.stdout.write(chunk) });
    // A stopped plan goes back to the queue, where nothing would pick it up: stop following.
    following.catch(() => undefined);
    const final = await Promise.race([following, stopRequested]);
    if (final === 'stop') return;
    say('');
    say(describeRunOutcome(final));
    const outputs = await fetchCurrentOutputs(api, workspaceId).catch(() => []);
    for (const line of formatStateOutputs(outputs)) say(line);
  } catch (error) {
    const detail = error instanceof ApiError ? `${error.message} [${error.code}]` : (error as Error).message;
    say(`The example run could not complete: ${detail}`);
  }
}
