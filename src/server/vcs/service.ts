// Version control providers and workspaces' repository links: who may see
// and change them, their rules, and sealing of their secrets. What happens
// when a provider tells of a commit is in ingress.ts; the work queue in
// tasks.ts.
import type { z } from 'zod';
import { OutpostError } from '../../protocol/errors.ts';
import type { vcsProviderInput, vcsProviderUpdate, vcsRepoInput, VcsCredentialsWire } from '../../protocol/vcs-api.ts';
import { cloneUrlOf, validateRepositoryName } from '../../vcs/providers.ts';
import { validateTriggerPattern } from '../../vcs/trigger-paths.ts';
import type { ServerContext } from '../context.ts';
import { uniqueWrite } from '../db/unique-violation.ts';
import { newId, newVcsWebhookSecret } from '../ids.ts';
import type { OrganizationRow } from '../organizations/repo.ts';
import type { ApiPrincipal } from '../organizations/service.ts';
import { requirePool } from '../pools/service.ts';
import { refusedAddress } from '../webhooks/sender.ts';
import type { WorkspaceRow } from '../workspaces/repo.ts';
import * as repo from './repo.ts';

/** Plain git servers have no webhooks: they are polled this often unless told otherwise. */
const defaultGitPollSeconds = 60;

export async function requireProvider(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<repo.ProviderRow> {
  const provider = await repo.findProvider(ctx.db, id);
  if (!provider || provider.organization_id !== principal.organizationId) throw new OutpostError('not_found', `VCS provider ${id} not found`);
  return provider;
}

export async function listProviders(ctx: ServerContext, org: OrganizationRow): Promise<repo.ProviderRow[]> {
  return repo.listProviders(ctx.db, org.id);
}

type ProviderInput = z.infer<typeof vcsProviderInput>;
type ProviderUpdate = z.infer<typeof vcsProviderUpdate>;

/** The credentials a provider was given, opened; only task assignments (to the server's own worker or a VCS agent of its pool) use them. */
export function openCredentials(ctx: ServerContext, provider: repo.ProviderRow): VcsCredentialsWire {
  return JSON.parse(ctx.sealer.open(provider.credentials)) as VcsCredentialsWire;
}

export function openWebhookSecrets(ctx: ServerContext, provider: repo.ProviderRow): string[] {
  const secrets = [ctx.sealer.open(provider.webhook_secret)];
  if (provider.previous_webhook_secret && (provider.previous_webhook_secret_expires_at ?? 0) > ctx.now()) secrets.push(ctx.sealer.open(provider.previous_webhook_secret));
  return secrets;
}

function sealCredentials(ctx: ServerContext, credentials: VcsCredentialsWire): string {
  return ctx.sealer.seal(JSON.stringify(credentials));
}

async function checkPool(ctx: ServerContext, principal: ApiPrincipal, poolId: string | null | undefined): Promise<void> {
  if (!poolId) return;
  const pool = await requirePool(ctx, principal, poolId);
  if (pool.kind !== 'vcs') throw new OutpostError('validation_failed', `agent pool ${pool.name} runs jobs; a provider is reached through a pool of kind vcs (outpost pool create NAME --kind vcs)`);
}

function checkEndpoint(kind: ProviderInput['kind'], httpUrl: string | null | undefined, reachedByServer: boolean): void {
  if (kind !== 'git' && !httpUrl) throw new OutpostError('validation_failed', `a ${kind} provider needs its http-url (the address of the forge)`);
  // The server itself will connect there: not to a cloud's metadata service.
  const refusal = reachedByServer && httpUrl ? refusedAddress(httpUrl) : undefined;
  if (refusal) throw new OutpostError('validation_failed', refusal);
}

/** Creates a provider; its webhook secret is returned once (give it to the forge's webhook). */
export async function createProvider(ctx: ServerContext, principal: ApiPrincipal, org: OrganizationRow, input: ProviderInput): Promise<{ row: repo.ProviderRow; webhookSecret: string }> {
  await checkPool(ctx, principal, input['agent-pool-id']);
  checkEndpoint(input.kind, input['http-url'], !input['agent-pool-id']);
  if (input['ssh-key'] && input.kind !== 'git') throw new OutpostError('validation_failed', 'an SSH key is for plain git providers; forges are reached over HTTPS with a token');
  if (await repo.findProviderByName(ctx.db, org.id, input.name)) throw new OutpostError('already_exists', `VCS provider ${input.name} already exists`);
  const now = ctx.now();
  const webhookSecret = newVcsWebhookSecret();
  const row = {
    id: newId('vcs'),
    organization_id: org.id,
    name: input.name,
    kind: input.kind,
    http_url: input['http-url'] ?? null,
    api_url: input['api-url'] ?? null,
    credentials: sealCredentials(ctx, { token: input.token, username: input.username, ssh_key: input['ssh-key'], known_hosts: input['known-hosts'] }),
    webhook_secret: ctx.sealer.seal(webhookSecret),
    previous_webhook_secret: null,
    previous_webhook_secret_expires_at: null,
    pool_id: input['agent-pool-id'] ?? null,
    poll_interval_ms: (input['poll-interval'] ?? (input.kind === 'git' ? defaultGitPollSeconds : 0)) * 1000,
    created_at: now,
    updated_at: now,
  };
  await uniqueWrite(() => repo.insertProvider(ctx.db, row), `VCS provider ${input.name} already exists`);
  ctx.logger.info({ provider: row.id, kind: row.kind, pool: row.pool_id }, 'VCS provider created');
  return { row, webhookSecret };
}

export async function updateProvider(ctx: ServerContext, principal: ApiPrincipal, id: string, input: ProviderUpdate): Promise<repo.ProviderRow> {
  const provider = await requireProvider(ctx, principal, id);
  await checkPool(ctx, principal, input['agent-pool-id']);
  const httpUrl = input['http-url'] === undefined ? provider.http_url : input['http-url'];
  const poolId = input['agent-pool-id'] === undefined ? provider.pool_id : input['agent-pool-id'];
  checkEndpoint(provider.kind, httpUrl, !poolId);
  if (input['ssh-key'] && provider.kind !== 'git') throw new OutpostError('validation_failed', 'an SSH key is for plain git providers; forges are reached over HTTPS with a token');
  if (input.name && input.name !== provider.name && (await repo.findProviderByName(ctx.db, provider.organization_id, input.name))) {
    throw new OutpostError('already_exists', `VCS provider ${input.name} already exists`);
  }
  const credentials = openCredentials(ctx, provider);
  const secretsChanged = input.token !== undefined || input.username !== undefined || input['ssh-key'] !== undefined || input['known-hosts'] !== undefined;
  await repo.updateProvider(ctx.db, provider.id, {
    ...(input.name ? { name: input.name } : {}),
    http_url: httpUrl ?? null,
    ...(input['api-url'] !== undefined ? { api_url: input['api-url'] } : {}),
    pool_id: poolId ?? null,
    ...(input['poll-interval'] !== undefined ? { poll_interval_ms: input['poll-interval'] * 1000 } : {}),
    ...(secretsChanged
      ? {
          credentials: sealCredentials(ctx, {
            token: input.token ?? credentials.token,
            username: input.username ?? credentials.username,
            ssh_key: input['ssh-key'] ?? credentials.ssh_key,
            known_hosts: input['known-hosts'] ?? credentials.known_hosts,
          }),
        }
      : {}),
    updated_at: ctx.now(),
  });
  ctx.notifier.notify('vcs');
  return (await repo.findProvider(ctx.db, provider.id))!;
}

export async function deleteProvider(ctx: ServerContext, principal: ApiPrincipal, id: string): Promise<void> {
  const provider = await requireProvider(ctx, principal, id);
  const links = await repo.countLinksOfProvider(ctx.db, provider.id);
  if (links > 0) throw new OutpostError('conflict', `VCS provider ${provider.name} is linked to ${links} workspace(s); unlink them first`);
  await repo.deleteProvider(ctx.db, provider.id);
}

/** A new webhook secret, returned once; the previous one is still accepted for `overlapMs` while the forge's hooks are updated. */
export async function rotateWebhookSecret(ctx: ServerContext, principal: ApiPrincipal, id: string, overlapMs: number): Promise<string> {
  const provider = await requireProvider(ctx, principal, id);
  const secret = newVcsWebhookSecret();
  const now = ctx.now();
  await repo.updateProvider(ctx.db, provider.id, {
    webhook_secret: ctx.sealer.seal(secret),
    previous_webhook_secret: overlapMs > 0 ? provider.webhook_secret : null,
    previous_webhook_secret_expires_at: overlapMs > 0 ? now + overlapMs : null,
    updated_at: now,
  });
  return secret;
}

export async function listDeliveries(ctx: ServerContext, principal: ApiPrincipal, id: string, limit: number): Promise<repo.DeliveryRow[]> {
  const provider = await requireProvider(ctx, principal, id);
  return repo.listDeliveries(ctx.db, provider.id, limit);
}

// --- workspaces' repository links -------------------------------------------------

export interface RepositorySettings {
  /** undefined: unchanged; null: unlink. */
  vcsRepo: z.infer<typeof vcsRepoInput> | null | undefined;
  triggerPatterns: string[] | undefined;
  speculative: boolean | undefined;
}

/** Links a workspace (the caller may act on: workspaces/service requireWorkspace) to a repository, changes the link, or unlinks it. */
export async function setWorkspaceRepository(ctx: ServerContext, principal: ApiPrincipal, workspace: WorkspaceRow, settings: RepositorySettings): Promise<void> {
  const existing = await repo.findLink(ctx.db, workspace.id);
  if (settings.vcsRepo === null) {
    if (existing) await repo.deleteLink(ctx.db, workspace.id);
    return;
  }
  for (const pattern of settings.triggerPatterns ?? []) {
    const problem = validateTriggerPattern(pattern);
    if (problem) throw new OutpostError('validation_failed', `trigger pattern ${JSON.stringify(pattern)}: ${problem}`);
  }
  if (!settings.vcsRepo) {
    if (!existing) {
      if (settings.triggerPatterns === undefined && settings.speculative === undefined) return;
      throw new OutpostError('validation_failed', `workspace ${workspace.name} is not linked to a repository; set vcs-repo first`);
    }
    await repo.updateLink(ctx.db, workspace.id, {
      ...(settings.triggerPatterns ? { trigger_patterns: JSON.stringify(settings.triggerPatterns) } : {}),
      ...(settings.speculative !== undefined ? { speculative: settings.speculative ? 1 : 0 } : {}),
      updated_at: ctx.now(),
    });
    return;
  }
  const input = settings.vcsRepo;
  const providerId = input['vcs-provider-id'] ?? input['oauth-token-id'] ?? existing?.provider_id;
  if (!providerId) throw new OutpostError('validation_failed', 'vcs-repo needs vcs-provider-id (or oauth-token-id): the provider the repository is on');
  const provider = await requireProvider(ctx, principal, providerId);
  const problem = validateRepositoryName(provider.kind, input.identifier);
  if (problem) throw new OutpostError('validation_failed', `vcs-repo identifier: ${problem}`);
  cloneUrlOf({ kind: provider.kind, url: provider.http_url ?? '', apiUrl: provider.api_url }, input.identifier);
  const now = ctx.now();
  const sameRepository = existing?.provider_id === provider.id && existing.repository === input.identifier;
  await repo.upsertLink(ctx.db, {
    workspace_id: workspace.id,
    provider_id: provider.id,
    repository: input.identifier,
    branch: input.branch ?? (sameRepository ? existing.branch : ''),
    trigger_patterns: JSON.stringify(settings.triggerPatterns ?? (existing ? (JSON.parse(existing.trigger_patterns) as string[]) : [])),
    tags_regex: input['tags-regex'] === undefined ? (existing?.tags_regex ?? null) : input['tags-regex'],
    submodules: (input['ingress-submodules'] ?? existing?.submodules === 1) ? 1 : 0,
    speculative: (settings.speculative ?? (existing ? existing.speculative === 1 : true)) ? 1 : 0,
    // A new repository or branch starts a new baseline for polling.
    last_commit_sha: sameRepository && (input.branch ?? existing.branch) === existing.branch ? existing.last_commit_sha : null,
    last_polled_at: sameRepository ? existing.last_polled_at : null,
    last_error: null,
    created_at: existing?.created_at ?? now,
    updated_at: now,
  });
  ctx.logger.info({ workspace: workspace.id, provider: provider.id, repository: input.identifier }, 'workspace linked to a repository');
  ctx.notifier.notify('vcs');
}

export interface RepositoryView {
  link: repo.RepositoryLinkRow;
  provider: repo.ProviderRow;
  /** Why version control work for this workspace waits or failed; null when it does not. */
  status: string | null;
}

/** A workspace's link as the API shows it, with what its VCS work waits for (no VCS agent connected, say). */
export async function repositoryOf(ctx: ServerContext, workspaceId: string): Promise<RepositoryView | undefined> {
  const link = await repo.findLink(ctx.db, workspaceId);
  const provider = link ? await repo.findProvider(ctx.db, link.provider_id) : undefined;
  if (!link || !provider) return undefined;
  return { link, provider, status: await waitingReason(ctx, provider, link) };
}

async function waitingReason(ctx: ServerContext, provider: repo.ProviderRow, link: repo.RepositoryLinkRow): Promise<string | null> {
  if (provider.pool_id) {
    const outstanding = await repo.countOutstandingTasks(ctx.db, provider.id);
    const connected = await repo.countConnectedAgents(ctx.db, provider.pool_id);
    if (connected === 0) {
      const pool = await requirePoolById(ctx, provider.pool_id);
      return `waiting for a VCS agent: no agent of pool ${pool} is connected, and provider ${provider.name} is reached only through it${outstanding > 0 ? ` (${outstanding} piece(s) of work waiting)` : ''}`;
    }
  }
  return link.last_error;
}

async function requirePoolById(ctx: ServerContext, poolId: string): Promise<string> {
  return (await repo.poolName(ctx.db, poolId)) ?? poolId;
}

/** What version control did for a workspace lately: each commit seen, and the run it started or why not. */
export async function listTriggers(ctx: ServerContext, workspace: WorkspaceRow, limit: number): Promise<repo.TriggerRow[]> {
  return repo.listTriggers(ctx.db, workspace.id, limit);
}

/** The pool of a VCS agent, which must be of kind `vcs` (a runner agent has no VCS work). */
export async function requireVcsPool(ctx: ServerContext, poolId: string): Promise<void> {
  if ((await repo.poolKind(ctx.db, poolId)) !== 'vcs') {
    throw new OutpostError('forbidden', 'this agent\'s pool runs jobs; VCS work goes to agents of a pool of kind vcs');
  }
}
