// The agent's health and metrics settings (the /healthz, /readyz and /metrics
// listener, docs/reliability.md), part of the agent's settings table (config.ts).
import { asInt, asString } from '../config/settings.ts';

export const observabilitySettings = {
  healthPort: {
    env: ['OUTPOST_AGENT_HEALTH_PORT'],
    default: '0',
    description: 'Port of the agent\'s health and metrics listener (plain HTTP: `/healthz`, `/readyz`, Prometheus `/metrics`). No authentication: it serves no job data and takes no commands. `0`: off.',
    parse: asInt(0, 65_535),
  },
  healthHost: {
    env: ['OUTPOST_AGENT_HEALTH_HOST'],
    default: '0.0.0.0',
    description: 'Address the health and metrics listener binds. The default, every interface, lets Kubernetes probes reach the pod IP; `127.0.0.1` keeps it local.',
    parse: asString,
  },
} as const;
