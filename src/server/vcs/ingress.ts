// How a commit becomes a run. A provider tells of commits by webhook (or a
// poll finds them); each workspace linked to the repository whose rules the
// commit meets gets one trigger per commit and cause (idempotent: the same
// delivery twice, or a webhook and a poll, queue one run). The commit is
// fetched once (or found in the cache), its changed files checked against
// the workspace's trigger patterns, and a run queued of it.
import { OutpostError } from '../../protocol/errors.ts';
import type { CommitInfoWire, IngressAttributes, VcsTaskResult } from '../../protocol/vcs-api.ts';
import { commitUrlOf, sameRepository } from '../../vcs/providers.ts';
import { triggerMatch } from '../../vcs/trigger-paths.ts';
import { deliveryIdOf, parseWebhook, verifyWebhook, type IncomingWebhook, type VcsEvent } from '../../vcs/webhooks.ts';
import { createFetchedConfigurationVersion } from '../configuration-versions/service.ts';
import type { ServerContext } from '../context.ts';
import type { VcsTriggerKind } from '../db/schema-vcs.ts';
import { newId } from '../ids.ts';
import { queueRunOfCommit } from '../runs/service.ts';
import { findWorkspaceById } from '../workspaces/service.ts';
import * as repo from './repo.ts';
import { openWebhookSecrets } from './service.ts';
import { commitArchiveKey, commitInfoKey, payloadOf, queueTask, retryDelayMs, taskAttempts } from './tasks.ts';

const zeroSha = /^0+$/;

/**
 * A webhook from a provider, straight or forwarded by a VCS agent of the
 * provider's pool: verified with the provider's secret, recorded once per
 * delivery id, and turned into triggers. Returns what it led to.
 */
export async function acceptWebhook(ctx: ServerContext, providerId: string, hook: IncomingWebhook, forwardedByPool?: string): Promise<string> {
  const provider = await repo.findProvider(ctx.db, providerId);
  if (!provider || (forwardedByPool !== undefined && provider.pool_id !== forwardedByPool)) throw new OutpostError('not_found', `VCS provider ${providerId} not found`);
  if (provider.kind === 'git') throw new OutpostError('validation_failed', 'a plain git provider has no webhooks: it is polled');
  verifyWebhook(provider.kind, openWebhookSecrets(ctx, provider), hook);
  const event = parseWebhook(provider.kind, hook);
  if (event.type === 'ping') return 'pong';
  if (event.type === 'ignored') return `ignored: ${event.event} events start nothing`;
  const links = (await repo.linksOfProvider(ctx.db, provider.id)).filter((link) => sameRepository(provider.kind, link.repository, event.repository));
  // Refused before it is recorded, so that the forge shows the failure and a redelivery after linking still counts.
  if (links.length === 0) throw new OutpostError('not_found', `no workspace is linked to repository ${event.repository} through VCS provider ${provider.name}`);
  const deliveryId = deliveryIdOf(provider.kind, hook);
  const record = newId('vcsd');
  if (deliveryId !== null) {
    const first = await repo.insertDeliveryOnce(ctx.db, { id: record, provider_id: provider.id, delivery_id: deliveryId.slice(0, 200), event: event.type, outcome: 'received', received_at: ctx.now() });
    if (!first) return `duplicate: delivery ${deliveryId} was received before; nothing queued`;
  }
  const outcomes: string[] = [];
  for (const link of links) outcomes.push(await triggerFromEvent(ctx, provider, link, event));
  const outcome = outcomes.join('; ');
  if (deliveryId !== null) await repo.updateDeliveryOutcome(ctx.db, record, outcome.slice(0, 1000));
  return outcome;
}

async function triggerFromEvent(ctx: ServerContext, provider: repo.ProviderRow, link: repo.RepositoryLinkRow, event: Exclude<VcsEvent, { type: 'ping' | 'ignored' }>): Promise<string> {
  const workspace = link.workspace_id;
  if (event.type === 'pull_request') {
    if (event.action !== 'opened' && event.action !== 'updated') return `${workspace}: pull request ${event.action}: nothing to plan`;
    if (link.speculative !== 1) return `${workspace}: speculative plans are off`;
    if (link.branch !== '' && event.baseBranch !== link.branch) return `${workspace}: pull request targets ${event.baseBranch}, not ${link.branch}`;
    return recordTrigger(ctx, provider, link, {
      kind: 'pull_request',
      key: `pr:${event.number}:${event.headSha}`,
      sha: event.headSha,
      compareTo: null,
      // The forge's ref of the pull request's head: it exists in the base repository also for a pull request from a fork.
      ref: pullRequestRef(provider.kind, event.number),
      pullRequest: { number: event.number, url: event.url, title: event.title, base: event.baseBranch, head: event.headBranch },
      commit: { message: event.title, author: event.author ?? '', url: null, sender: event.author },
      changedFiles: null,
    });
  }
  if (event.deleted || zeroSha.test(event.after)) return `${workspace}: ${event.ref} deleted`;
  if (event.tag !== null) {
    if (!link.tags_regex || !new RegExp(link.tags_regex).test(event.tag)) return `${workspace}: tag ${event.tag} does not match the workspace's tags regex`;
    return recordTrigger(ctx, provider, link, { kind: 'tag', key: `tag:${event.tag}:${event.after}`, sha: event.after, compareTo: null, ref: event.ref, pullRequest: null, commit: commitOf(event), changedFiles: null });
  }
  if (link.branch === '' || event.branch !== link.branch) return `${workspace}: push to ${event.branch ?? event.ref}, not to ${link.branch || 'the default branch (not known yet)'}`;
  await repo.updateLink(ctx.db, link.workspace_id, { last_commit_sha: event.after, updated_at: ctx.now() });
  return recordTrigger(ctx, provider, link, {
    kind: 'push',
    key: `push:${event.after}`,
    sha: event.after,
    compareTo: event.before && !zeroSha.test(event.before) ? event.before : null,
    ref: event.ref,
    pullRequest: null,
    commit: commitOf(event),
    changedFiles: event.changedFiles,
  });
}

function pullRequestRef(kind: repo.ProviderRow['kind'], number: number): string {
  switch (kind) {
    case 'gitlab':
      return `refs/merge-requests/${number}/head`;
    case 'bitbucket-dc':
      return `refs/pull-requests/${number}/from`;
    default:
      return `refs/pull/${number}/head`;
  }
}

function commitOf(event: Extract<VcsEvent, { type: 'push' }>): NewTrigger['commit'] {
  return event.commit ? { message: event.commit.message, author: event.commit.author, url: event.commit.url, sender: event.sender } : null;
}

export interface NewTrigger {
  kind: VcsTriggerKind;
  key: string;
  sha: string;
  compareTo: string | null;
  ref: string;
  pullRequest: { number: number; url: string | null; title: string; base: string; head: string } | null;
  commit: { message: string; author: string; url: string | null; sender: string | null } | null;
  changedFiles: string[] | null;
}

/** Records a trigger once per commit and cause, and gets its configuration: from the cache, or by queueing a fetch. */
export async function recordTrigger(ctx: ServerContext, provider: repo.ProviderRow, link: repo.RepositoryLinkRow, trigger: NewTrigger): Promise<string> {
  const now = ctx.now();
  const first = await repo.insertTriggerOnce(ctx.db, {
    id: newId('vcst'),
    workspace_id: link.workspace_id,
    trigger_key: trigger.key,
    kind: trigger.kind,
    sha: trigger.sha,
    compare_to: trigger.compareTo,
    ref: trigger.ref,
    pull_request: trigger.pullRequest ? JSON.stringify(trigger.pullRequest) : null,
    commit: trigger.commit ? JSON.stringify(trigger.commit) : null,
    changed_files: trigger.changedFiles ? JSON.stringify(trigger.changedFiles) : null,
    status: 'waiting',
    reason: null,
    run_id: null,
    created_at: now,
    updated_at: now,
  });
  if (!first) return `${link.workspace_id}: ${trigger.kind} of ${trigger.sha.slice(0, 12)} was seen before; nothing queued`;
  const workspace = await findWorkspaceById(ctx, link.workspace_id);
  const patterns = JSON.parse(link.trigger_patterns) as string[];
  const needsDiff = trigger.changedFiles === null && trigger.compareTo !== null && trigger.kind === 'push' && (patterns.length > 0 || (workspace?.working_directory ?? '') !== '');
  const submodules = link.submodules === 1;
  const cachedInfo = needsDiff ? undefined : await ctx.blobs.get(commitInfoKey(provider.id, link.repository, trigger.sha));
  const cachedArchive = cachedInfo ? await ctx.blobs.stream(commitArchiveKey(provider.id, link.repository, trigger.sha, submodules)) : undefined;
  if (cachedInfo && cachedArchive) {
    cachedArchive.stream.destroy();
    await runWaitingTriggers(ctx, provider, link.repository, submodules, JSON.parse(cachedInfo.toString('utf8')) as CommitInfoWire, null);
    return `${link.workspace_id}: ${trigger.kind} of ${trigger.sha.slice(0, 12)} from the commit cache`;
  }
  await queueTask(ctx, provider, { kind: 'fetch', repository: link.repository, sha: trigger.sha, ref: trigger.ref, submodules, compare_to: needsDiff ? trigger.compareTo : null });
  return `${link.workspace_id}: ${trigger.kind} of ${trigger.sha.slice(0, 12)} queued for fetching`;
}

/** Every trigger waiting for this commit of this repository: a run, or skipped because no trigger path changed. */
async function runWaitingTriggers(ctx: ServerContext, provider: repo.ProviderRow, repository: string, submodules: boolean, commit: CommitInfoWire, changedFiles: string[] | null): Promise<void> {
  for (const trigger of await repo.waitingTriggersOf(ctx.db, commit.sha)) {
    const link = await repo.findLink(ctx.db, trigger.workspace_id);
    if (!link || link.provider_id !== provider.id || !sameRepository(provider.kind, link.repository, repository) || (link.submodules === 1) !== submodules) continue;
    await runTrigger(ctx, provider, link, trigger, commit, changedFiles);
  }
}

async function runTrigger(ctx: ServerContext, provider: repo.ProviderRow, link: repo.RepositoryLinkRow, trigger: repo.TriggerRow, commit: CommitInfoWire, fetchedFiles: string[] | null): Promise<void> {
  const now = ctx.now();
  const workspace = await findWorkspaceById(ctx, link.workspace_id);
  if (!workspace) return;
  const files = trigger.changed_files ? (JSON.parse(trigger.changed_files) as string[]) : trigger.compare_to ? fetchedFiles : null;
  if (trigger.kind === 'push' || trigger.kind === 'poll') {
    const match = triggerMatch(files, { workingDirectory: workspace.working_directory, patterns: JSON.parse(link.trigger_patterns) as string[] });
    if (!match.runs) {
      await repo.settleTrigger(ctx.db, trigger.id, 'skipped', { reason: match.reason, changed_files: files ? JSON.stringify(files) : null }, now);
      return;
    }
  }
  // Taken from `waiting` first: a replica handling the same result acts once.
  if (!(await repo.settleTrigger(ctx.db, trigger.id, 'queued', { changed_files: files ? JSON.stringify(files) : null }, now))) return;
  try {
    const archive = await ctx.blobs.get(commitArchiveKey(provider.id, link.repository, trigger.sha, link.submodules === 1));
    if (!archive) throw new OutpostError('vcs_fetch_failed', `the archive of commit ${trigger.sha} is missing from the commit cache`);
    const ingress = ingressOf(provider, link, trigger, commit);
    const cv = await createFetchedConfigurationVersion(ctx, workspace.id, archive, provider.kind, ingress);
    const firstLine = commit.message.split('\n')[0]!.slice(0, 200);
    const what = trigger.kind === 'pull_request' ? `Speculative plan of pull request #${ingress['pull-request-number']}` : trigger.kind === 'tag' ? `Tag ${ingress.tag}` : `Commit ${trigger.sha.slice(0, 8)}`;
    const run = await queueRunOfCommit(ctx, { workspaceId: workspace.id, configurationVersionId: cv.id, message: `${what}: ${firstLine}`, speculative: trigger.kind === 'pull_request' });
    await repo.finishTriggerRun(ctx.db, trigger.id, run.id, ctx.now());
    await repo.updateLink(ctx.db, link.workspace_id, { last_error: null, updated_at: ctx.now() });
    if (provider.kind !== 'git') {
      await repo.insertCommitStatus(ctx.db, { run_id: run.id, provider_id: provider.id, repository: link.repository, sha: trigger.sha, context: `outpost/${workspace.name}`, reported: null, checked_at: -1 });
      ctx.notifier.notify('vcs');
    }
    ctx.logger.info({ workspace: workspace.id, run: run.id, sha: trigger.sha, kind: trigger.kind }, 'run queued from version control');
  } catch (error) {
    const message = error instanceof OutpostError ? error.message : 'internal error';
    if (!(error instanceof OutpostError)) ctx.logger.error({ err: error, trigger: trigger.id }, 'a VCS trigger could not queue its run');
    await repo.failQueuedTrigger(ctx.db, trigger.id, message, ctx.now());
    await repo.updateLink(ctx.db, link.workspace_id, { last_error: message, updated_at: ctx.now() });
  }
}

function ingressOf(provider: repo.ProviderRow, link: repo.RepositoryLinkRow, trigger: repo.TriggerRow, commit: CommitInfoWire): IngressAttributes {
  const told = trigger.commit ? (JSON.parse(trigger.commit) as NonNullable<NewTrigger['commit']>) : null;
  const pullRequest = trigger.pull_request ? (JSON.parse(trigger.pull_request) as NonNullable<NewTrigger['pullRequest']>) : null;
  const endpoint = { kind: provider.kind, url: provider.http_url ?? '', apiUrl: provider.api_url };
  return {
    identifier: link.repository,
    'commit-sha': trigger.sha,
    'commit-message': commit.message,
    'commit-author': commit.author_name || told?.author || '',
    'commit-url': told?.url ?? (provider.kind === 'git' ? null : commitUrlOf(endpoint, link.repository, trigger.sha)),
    branch: pullRequest?.head ?? (trigger.ref.startsWith('refs/heads/') ? trigger.ref.slice('refs/heads/'.length) : null),
    tag: trigger.ref.startsWith('refs/tags/') ? trigger.ref.slice('refs/tags/'.length) : null,
    'is-pull-request': pullRequest !== null,
    'pull-request-number': pullRequest?.number ?? null,
    'pull-request-url': pullRequest?.url ?? null,
    'pull-request-title': pullRequest?.title ?? null,
    'sender-username': told?.sender ?? null,
  };
}

/**
 * What a task's taker answered (the server's worker or a VCS agent). For a
 * fetch, the archive is already in the commit cache (stored by the taker's
 * upload or by the worker).
 */
export async function handleTaskResult(ctx: ServerContext, task: repo.TaskRow, result: VcsTaskResult): Promise<void> {
  const provider = await repo.findProvider(ctx.db, task.provider_id);
  const payload = payloadOf(task);
  const now = ctx.now();
  if (!provider) return void (await repo.endTask(ctx.db, task.id, 'failed', 'the provider was deleted', now));
  if (result.outcome === 'failed') {
    const message = `${result.error.code}: ${result.error.message}`.slice(0, 2000);
    // A check answers a person waiting for it: once, no retries.
    const retrying = task.attempts < taskAttempts && result.error.code !== 'validation_failed' && payload.kind !== 'check';
    if (retrying) await repo.retryTask(ctx.db, task.id, message, now + retryDelayMs(task.attempts), now);
    else if (!(await repo.endTask(ctx.db, task.id, 'failed', message, now))) return;
    ctx.logger.warn({ task: task.id, kind: task.kind, provider: provider.id, attempt: task.attempts, retrying, error: message }, 'VCS task failed');
    if (payload.kind === 'status' || payload.kind === 'check') return;
    // The workspaces show it from the first failure on, not only once the retries are spent.
    const shown = `${result.error.message}${retrying ? ' (trying again)' : ''}`.slice(0, 2000);
    for (const link of (await repo.linksOfProvider(ctx.db, provider.id)).filter((row) => sameRepository(provider.kind, row.repository, payload.repository))) {
      await repo.updateLink(ctx.db, link.workspace_id, { last_error: shown, ...(payload.kind === 'refs' && !retrying ? { last_polled_at: now } : {}), updated_at: now });
      if (payload.kind === 'fetch' && !retrying) {
        for (const trigger of await repo.waitingTriggersOfWorkspace(ctx.db, link.workspace_id)) {
          if (trigger.sha === payload.sha) await repo.settleTrigger(ctx.db, trigger.id, 'failed', { reason: result.error.message.slice(0, 2000) }, now);
        }
      }
    }
    return;
  }
  if (result.outcome === 'fetched' && payload.kind === 'fetch') {
    if (!(await ctx.blobs.stream(commitArchiveKey(provider.id, payload.repository, payload.sha, payload.submodules)))) {
      return handleTaskResult(ctx, task, { outcome: 'failed', error: { code: 'invalid_request', message: 'the fetch was reported before its archive was uploaded' } });
    }
    await ctx.blobs.put(commitInfoKey(provider.id, payload.repository, payload.sha), Buffer.from(JSON.stringify(result.commit)));
    if (!(await repo.endTask(ctx.db, task.id, 'done', null, now))) return;
    await runWaitingTriggers(ctx, provider, payload.repository, payload.submodules, result.commit, result.changed_files);
    return;
  }
  if (result.outcome === 'refs' && payload.kind === 'refs') {
    if (!(await repo.endTask(ctx.db, task.id, 'done', null, now))) return;
    await onRefs(ctx, provider, payload.repository, result);
    return;
  }
  if (result.outcome === 'checked' && payload.kind === 'check') {
    await repo.endTask(ctx.db, task.id, 'done', null, now, JSON.stringify(result));
    return;
  }
  if (result.outcome === 'posted' && payload.kind === 'status') {
    await repo.endTask(ctx.db, task.id, 'done', null, now);
    return;
  }
  throw new OutpostError('validation_failed', `a ${payload.kind} task cannot end with outcome ${result.outcome}`);
}

/** A poll's answer: a link's branch with a commit newer than the last seen gets a trigger (the first look only sets the baseline). */
async function onRefs(ctx: ServerContext, provider: repo.ProviderRow, repository: string, result: Extract<VcsTaskResult, { outcome: 'refs' }>): Promise<void> {
  const now = ctx.now();
  for (const link of (await repo.linksOfProvider(ctx.db, provider.id)).filter((row) => sameRepository(provider.kind, row.repository, repository))) {
    const branch = link.branch || result.head || '';
    const sha = branch ? result.refs[`refs/heads/${branch}`] : undefined;
    if (!sha) {
      await repo.updateLink(ctx.db, link.workspace_id, { branch, last_polled_at: now, last_error: `branch ${branch || '(default)'} not found in ${repository}`, updated_at: now });
      continue;
    }
    const previous = link.branch === branch ? link.last_commit_sha : null;
    await repo.updateLink(ctx.db, link.workspace_id, { branch, last_commit_sha: sha, last_polled_at: now, last_error: null, updated_at: now });
    if (previous === null || previous === sha) continue;
    await recordTrigger(ctx, provider, { ...link, branch }, {
      kind: 'poll',
      // The same key as the push webhook's: a commit seen both ways runs once.
      key: `push:${sha}`,
      sha,
      compareTo: previous,
      ref: `refs/heads/${branch}`,
      pullRequest: null,
      commit: null,
      changedFiles: null,
    });
  }
}
