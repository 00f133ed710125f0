// Settings of `outpost quickstart` (what `npm start` runs). It runs the
// server and one agent in this process, so it derives their settings from
// the same environment, with data directories under one quickstart folder.
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig, type AgentConfig } from '../agent/config.ts';
import { loadSettings, type Env } from '../config/settings.ts';
import { loadServerConfig, type ServerConfig } from '../server/config.ts';

export const quickstartSettings = {
  dir: {
    env: ['OUTPOST_QUICKSTART_DIR'],
    default: '.outpost',
    description: 'Folder for the quickstart\'s server data (`server/`) and agent data (`agent/`), unless OUTPOST_DATA_DIR / OUTPOST_AGENT_DATA_DIR say otherwise.',
    parse: (raw: string) => path.resolve(raw),
  },
  toolchainCache: {
    env: ['OUTPOST_TOOLCHAIN_CACHE'],
    default: '~/.cache/outpost',
    description: 'Where scripts/build-tofu.sh leaves OpenTofu binaries built from source; the quickstart uses one of the right version when it cannot download the engine (no internet).',
    parse: (raw: string) => path.resolve(raw.replace(/^~(?=\/|$)/, os.homedir())),
  },
} as const;

export interface QuickstartConfig {
  server: ServerConfig;
  agent: AgentConfig;
  toolchainCache: string;
}

export function loadQuickstartConfig(env: Env = process.env): QuickstartConfig {
  const own = loadSettings(quickstartSettings, env);
  const server = loadServerConfig({ OUTPOST_DATA_DIR: path.join(own.dir, 'server'), ...env });
  const agent = loadAgentConfig({ OUTPOST_AGENT_DATA_DIR: path.join(own.dir, 'agent'), OUTPOST_AGENT_NAME: 'quickstart', ...env });
  return { server, agent, toolchainCache: own.toolchainCache };
}
