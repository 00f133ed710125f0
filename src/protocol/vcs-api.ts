// Version control: what clients send to configure providers and repository
// links (API v2), and the VCS relay of the agent protocol — the tasks a VCS
// agent claims for the providers only it can reach, and what it answers.
// docs/vcs.md describes both; this file is their source of truth.
import { z } from 'zod';
import { agentApiPrefix, jobErrorInfo } from './agent-api.ts';

export const vcsProviderKinds = ['github', 'gitlab', 'bitbucket-dc', 'gitea', 'git'] as const;
export type VcsProviderKind = (typeof vcsProviderKinds)[number];


export const vcsPaths = {
  poll: `${agentApiPrefix}/vcs/poll`,
  taskArchive: (taskId: string) => `${agentApiPrefix}/vcs/tasks/${taskId}/archive`,
  taskResult: (taskId: string) => `${agentApiPrefix}/vcs/tasks/${taskId}/result`,
  webhook: (providerId: string) => `${agentApiPrefix}/vcs/providers/${providerId}/webhook`,
} as const;

/** The header that carries a forwarded webhook's own headers (base64 of a JSON object), so that its body reaches the server byte for byte. */
export const forwardedHeadersHeader = 'outpost-forwarded-headers';

const httpUrl = z
  .string()
  .max(2048)
  .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), 'expected an http(s) URL')
  .transform((value) => value.replace(/\/+$/, ''));

/** A provider's settings; secrets are write-only (never returned). */
export const vcsProviderInput = z.object({
  name: z.string().min(1).max(90).regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, ., - and _'),
  kind: z.enum(vcsProviderKinds),
  /** The forge's web address (https://github.com, https://gitlab.example.com); unused by plain git. */
  'http-url': httpUrl.nullable().optional(),
  /** The API's address when it is not derived from http-url (GitHub Enterprise Server: https://ghe.example.com/api/v3). */
  'api-url': httpUrl.nullable().optional(),
  token: z.string().min(1).max(8192).optional(),
  /** For HTTPS basic authentication where the forge wants a user name with the token. */
  username: z.string().max(255).optional(),
  'ssh-key': z.string().min(1).max(16384).optional(),
  'known-hosts': z.string().max(65536).optional(),
  /** A pool of kind `vcs` whose agents reach the provider; null: the server reaches it itself. */
  'agent-pool-id': z.string().nullable().optional(),
  /** Seconds between looks for new commits with `git ls-remote`; 0 turns polling off. */
  'poll-interval': z.number().int().min(0).max(86_400).optional(),
});
export const vcsProviderUpdate = vcsProviderInput.omit({ kind: true }).partial();
export type VcsProviderInput = z.input<typeof vcsProviderInput>;

/** TFE's `vcs-repo` attributes of a workspace, with Outpost's name for the provider next to TFE's. */
export const vcsRepoInput = z.object({
  identifier: z.string().min(1).max(1024),
  branch: z.string().max(255).regex(/^[^\s~^:?*[\\]*$/, 'not a valid branch name').optional(),
  'vcs-provider-id': z.string().optional(),
  /** TFE's name for the provider id. */
  'oauth-token-id': z.string().optional(),
  'ingress-submodules': z.boolean().optional(),
  /** Tags whose name matches start runs (TFE's tags-regex); null or absent: tags start nothing. */
  'tags-regex': z
    .string()
    .max(256)
    .refine((value) => {
      try {
        new RegExp(value);
        return true;
      } catch {
        return false;
      }
    }, 'not a valid regular expression')
    .nullable()
    .optional(),
});

// --- the VCS relay of the agent protocol -----------------------------------

const sha = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'a commit id (40 or 64 hex digits)');

export const vcsCredentialsWire = z.object({
  token: z.string().optional(),
  username: z.string().optional(),
  ssh_key: z.string().optional(),
  known_hosts: z.string().optional(),
});
export type VcsCredentialsWire = z.infer<typeof vcsCredentialsWire>;

export const vcsRemote = z.object({ kind: z.enum(vcsProviderKinds), url: z.string(), credentials: vcsCredentialsWire });
export type VcsRemote = z.infer<typeof vcsRemote>;

export const vcsEndpointWire = z.object({ kind: z.enum(vcsProviderKinds), url: z.string(), api_url: z.string().nullable() });

export const commitStates = ['pending', 'success', 'failure', 'error'] as const;

export const vcsTaskAssignment = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('refs'), task_id: z.string(), remote: vcsRemote }),
  z.object({
    kind: z.literal('fetch'),
    task_id: z.string(),
    remote: vcsRemote,
    sha,
    ref: z.string().nullable(),
    submodules: z.boolean(),
    compare_to: sha.nullable(),
    max_bytes: z.number().int().min(1),
  }),
  z.object({ kind: z.literal('check'), task_id: z.string(), endpoint: vcsEndpointWire, remote: vcsRemote, repository: z.string() }),
  z.object({
    kind: z.literal('status'),
    task_id: z.string(),
    endpoint: vcsEndpointWire,
    credentials: vcsCredentialsWire,
    repository: z.string(),
    sha,
    status: z.object({ state: z.enum(commitStates), context: z.string(), description: z.string(), target_url: z.string() }),
  }),
]);
export type VcsTaskAssignment = z.infer<typeof vcsTaskAssignment>;

export const vcsPollRequest = z.object({
  /** How long the server may hold the request open; defaults to the agent poll timeout. */
  wait_ms: z.number().int().min(0).max(60_000).optional(),
  /** Tasks the agent may take at once. */
  max_tasks: z.number().int().min(1).max(64).default(4),
});
export type VcsPollRequest = z.input<typeof vcsPollRequest>;

export const vcsPollResponse = z.object({ tasks: z.array(vcsTaskAssignment) });
export type VcsPollResponse = z.infer<typeof vcsPollResponse>;

export const commitInfoWire = z.object({
  sha,
  message: z.string().max(65_536),
  author_name: z.string().max(1024),
  author_email: z.string().max(1024),
  committed_at: z.string().max(64),
});
export type CommitInfoWire = z.infer<typeof commitInfoWire>;

export const vcsTaskResult = z.discriminatedUnion('outcome', [
  z.object({ outcome: z.literal('failed'), error: jobErrorInfo }),
  z.object({ outcome: z.literal('refs'), head: z.string().max(1024).nullable(), refs: z.record(z.string().max(1024), sha) }),
  z.object({ outcome: z.literal('fetched'), commit: commitInfoWire, changed_files: z.array(z.string().max(4096)).max(100_000).nullable() }),
  z.object({ outcome: z.literal('posted') }),
  z.object({ outcome: z.literal('checked'), default_branch: z.string().max(1024).nullable(), private: z.boolean().nullable(), branches: z.number().int().min(0) }),
]);
export type VcsTaskResult = z.infer<typeof vcsTaskResult>;

/**
 * The commit a VCS configuration version is: TFE's `ingress-attributes`
 * (with the commit's author added), shown on configuration versions and runs.
 */
export const ingressAttributes = z.object({
  identifier: z.string(),
  'commit-sha': z.string(),
  'commit-message': z.string(),
  'commit-author': z.string(),
  'commit-url': z.string().nullable(),
  branch: z.string().nullable(),
  tag: z.string().nullable(),
  'is-pull-request': z.boolean(),
  'pull-request-number': z.number().int().nullable(),
  'pull-request-url': z.string().nullable(),
  'pull-request-title': z.string().nullable(),
  'sender-username': z.string().nullable(),
});
export type IngressAttributes = z.infer<typeof ingressAttributes>;
