// Does one task of the version control work queue: the same code whether
// the server's worker runs it (a provider it reaches) or a VCS agent does (a
// provider only the agent's network reaches). Failures become a `failed`
// result with a code of the catalogue; nothing here throws past it.
import { OutpostError } from '../protocol/errors.ts';
import type { VcsCredentialsWire, VcsTaskAssignment, VcsTaskResult } from '../protocol/vcs-api.ts';
import { postCommitStatus, readRepository } from './commit-status.ts';
import { fetchCommitArchive, listRemoteRefs } from './git.ts';
import type { VcsCredentials } from './providers.ts';

export interface TaskOutcome {
  result: VcsTaskResult;
  /** A fetch's .tar.gz, to store before the result is reported. */
  archive?: Buffer;
}

export function credentialsOf(wire: VcsCredentialsWire): VcsCredentials {
  return {
    ...(wire.token ? { token: wire.token } : {}),
    ...(wire.username ? { username: wire.username } : {}),
    ...(wire.ssh_key ? { sshKey: wire.ssh_key } : {}),
    ...(wire.known_hosts ? { knownHosts: wire.known_hosts } : {}),
  };
}

export async function executeTask(task: VcsTaskAssignment, signal?: AbortSignal): Promise<TaskOutcome> {
  try {
    switch (task.kind) {
      case 'refs': {
        const { head, refs } = await listRemoteRefs({ kind: task.remote.kind, url: task.remote.url, credentials: credentialsOf(task.remote.credentials) }, { signal });
        return { result: { outcome: 'refs', head, refs: Object.fromEntries(refs) } };
      }
      case 'fetch': {
        const fetched = await fetchCommitArchive(
          { kind: task.remote.kind, url: task.remote.url, credentials: credentialsOf(task.remote.credentials) },
          { sha: task.sha, ...(task.ref ? { ref: task.ref } : {}), submodules: task.submodules, compareTo: task.compare_to, maxBytes: task.max_bytes },
          { signal },
        );
        const { commit } = fetched;
        return {
          archive: fetched.archive,
          result: {
            outcome: 'fetched',
            commit: { sha: commit.sha, message: commit.message, author_name: commit.authorName, author_email: commit.authorEmail, committed_at: commit.committedAt },
            changed_files: fetched.changedFiles,
          },
        };
      }
      case 'check': {
        // Both ways the provider is used: git over HTTPS or SSH, and (forges) the API with the same token.
        const remote = { kind: task.remote.kind, url: task.remote.url, credentials: credentialsOf(task.remote.credentials) };
        const { head, refs } = await listRemoteRefs(remote, { signal });
        const branches = [...refs.keys()].filter((ref) => ref.startsWith('refs/heads/')).length;
        if (task.endpoint.kind === 'git') return { result: { outcome: 'checked', default_branch: head, private: null, branches } };
        const { endpoint } = task;
        const read = await readRepository({ kind: endpoint.kind, url: endpoint.url, apiUrl: endpoint.api_url }, remote.credentials, task.repository, { signal });
        return { result: { outcome: 'checked', default_branch: read.defaultBranch ?? head, private: read.private, branches } };
      }
      case 'status': {
        const { endpoint, status } = task;
        await postCommitStatus(
          { kind: endpoint.kind, url: endpoint.url, apiUrl: endpoint.api_url },
          credentialsOf(task.credentials),
          task.repository,
          task.sha,
          { state: status.state, context: status.context, description: status.description, targetUrl: status.target_url },
          { signal },
        );
        return { result: { outcome: 'posted' } };
      }
    }
  } catch (error) {
    if (error instanceof OutpostError) return { result: { outcome: 'failed', error: { code: error.code, message: error.message } } };
    // Anything else is a defect here, not the provider's answer: its message carries no secret (the git runner scrubs), but say less anyway.
    return { result: { outcome: 'failed', error: { code: 'internal', message: `the ${task.kind} task failed unexpectedly: ${(error as Error).name}` } } };
  }
}
