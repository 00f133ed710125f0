// Settings of `outpost quickstart` (what `npm start` runs). It runs the
// server and one agent in this process, so it derives their settings from
// the same environment, with data directories under one quickstart folder.
import path from 'node:path';
import { loadAgentConfig, type AgentConfig } from '../agent/config.ts';
import type { ShutdownTimeouts } from '../agent/shutdown.ts';
import { shutdownSettings } from '../agent/shutdown-config.ts';
import { loadSettings, type Env } from '../config/settings.ts';
import { loadServerConfig, type ServerConfig } from '../server/config.ts';

export const quickstartSettings = {
  dir: {
    env: ['OUTPOST_QUICKSTART_DIR'],
    default: '.outpost',
    description: 'Folder for the quickstart\'s server data (`server/`) and agent data (`agent/`), unless OUTPOST_DATA_DIR / OUTPOST_AGENT_DATA_DIR say otherwise.',
    parse: (raw: string) => path.resolve(raw),
  },
} as const;

export interface QuickstartConfig {
  server: ServerConfig;
  agent: AgentConfig;
  /** What Ctrl-C does to the in-process agent. */
  stop: ShutdownTimeouts;
}

/**
 * The quickstart runs in a terminal, where Ctrl-C means "stop now": its
 * agent interrupts a running job (grace) unless a stop action is set, so a
 * second Ctrl-C kills it.
 */
const interactiveStopAction = 'grace';

export function loadQuickstartConfig(env: Env = process.env): QuickstartConfig {
  const own = loadSettings(quickstartSettings, env);
  const server = loadServerConfig({ OUTPOST_DATA_DIR: path.join(own.dir, 'server'), ...env });
  const stopActionSet = shutdownSettings.onStopAction.env.some((name) => (env[name] ?? '') !== '');
  const agent = loadAgentConfig({
    OUTPOST_AGENT_DATA_DIR: path.join(own.dir, 'agent'),
    OUTPOST_AGENT_NAME: 'quickstart',
    ...(stopActionSet ? {} : { OUTPOST_AGENT_WORKER_ON_STOP_ACTION: interactiveStopAction }),
    ...env,
  });
  return { server, agent, stop: { action: agent.onStopAction, drainTimeoutMs: agent.drainTimeout, graceTimeoutMs: agent.graceShutdownTimeout } };
}
