// The VCS agent's settings (an agent of a pool of kind `vcs`, docs/vcs.md),
// part of the agent's settings table (config.ts).
import { asInt, asString } from '../config/settings.ts';

export const vcsSettings = {
  vcsWebhookPort: {
    env: ['OUTPOST_AGENT_VCS_WEBHOOK_PORT'],
    default: '0',
    description: 'VCS agents only: port of a listener for the webhooks of forges inside this network (`POST /webhooks/<provider id>`), which the agent forwards to the control plane over its own connection. `0`: off (the providers are polled, or send webhooks to the control plane directly).',
    parse: asInt(0, 65_535),
  },
  vcsWebhookHost: {
    env: ['OUTPOST_AGENT_VCS_WEBHOOK_HOST'],
    default: '0.0.0.0',
    description: 'VCS agents only: address the webhook listener binds.',
    parse: asString,
  },
  vcsConcurrency: {
    env: ['OUTPOST_AGENT_VCS_CONCURRENCY'],
    default: '4',
    description: 'VCS agents only: provider tasks (fetch a commit, list refs, post a status) done at once.',
    parse: asInt(1, 64),
  },
} as const;
