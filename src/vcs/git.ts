// What Outpost asks of a git server: which refs it has, and the files of one
// commit as a .tar.gz, the way a user's upload arrives. Each call works in a
// temporary directory of its own (GitSession) that is removed afterwards.
import { gzipSync } from 'node:zlib';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../protocol/errors.ts';
import { GitSession, failureKindOf, type GitOptions, type GitRemote } from './git-process.ts';

export type { GitOptions, GitRemote } from './git-process.ts';

export interface RemoteRefs {
  /** The default branch's name (`main`), from the symbolic ref HEAD; null when the server does not say. */
  head: string | null;
  /** `refs/heads/main` → sha, `refs/tags/v1` → the commit an annotated tag points at. */
  refs: Map<string, string>;
}

export interface CommitInfo {
  sha: string;
  message: string;
  authorName: string;
  authorEmail: string;
  /** The committer date, ISO 8601 in UTC. */
  committedAt: string;
}

export interface FetchedCommit {
  /** A .tar.gz of the tree at the commit, without any .git. */
  archive: Buffer;
  commit: CommitInfo;
  /** Paths changed since `compareTo`; null when not asked or not computable. */
  changedFiles: string[] | null;
}

export interface FetchRequest {
  sha: string;
  /** A ref the commit is reachable from (`refs/heads/main`), for servers that refuse a fetch by sha. */
  ref?: string;
  submodules: boolean;
  compareTo?: string | null;
  /** The largest archive (compressed) accepted. */
  maxBytes: number;
}

const shaPattern = /^([0-9a-f]{40}|[0-9a-f]{64})$/;
/** Depths tried in turn when a commit has to be found behind a ref: shallow first, the whole history last. */
const fallbackDepths = [50, 500];

function isSha(value: string | null | undefined): value is string {
  return typeof value === 'string' && shaPattern.test(value) && !/^0+$/.test(value);
}

function checkRemote(remote: GitRemote): void {
  // The URL becomes an argument of git: one that starts with "-" would be read as an option.
  if (remote.url.length === 0 || remote.url.startsWith('-') || /[\s\p{Cc}]/u.test(remote.url)) {
    throw new OutpostError('validation_failed', 'the remote URL is empty, starts with "-" or contains whitespace');
  }
}

export async function listRemoteRefs(remote: GitRemote, options: GitOptions = {}): Promise<RemoteRefs> {
  checkRemote(remote);
  const session = await GitSession.open(remote, options);
  try {
    // Patterns keep GitHub's refs/pull/* and GitLab's refs/merge-requests/* out of the answer.
    const output = await session.git(['ls-remote', '--symref', remote.url, 'HEAD', 'refs/heads/*', 'refs/tags/*'], 'listing the refs');
    return parseLsRemote(output.toString('utf8'));
  } finally {
    await session.dispose();
  }
}

/** Reads `git ls-remote --symref` output; a peeled `^{}` line overrides its tag's own object id. */
export function parseLsRemote(output: string): RemoteRefs {
  let head: string | null = null;
  const refs = new Map<string, string>();
  const peeled = new Map<string, string>();
  for (const line of output.split('\n')) {
    const symref = /^ref: refs\/heads\/(\S+)\tHEAD$/.exec(line);
    if (symref) {
      head = symref[1]!;
      continue;
    }
    const match = /^([0-9a-f]{40,64})\t(refs\/\S+)$/.exec(line);
    if (!match) continue;
    const [, sha, name] = match as unknown as [string, string, string];
    if (!name.startsWith('refs/heads/') && !name.startsWith('refs/tags/')) continue;
    if (name.endsWith('^{}')) peeled.set(name.slice(0, -3), sha);
    else refs.set(name, sha);
  }
  for (const [name, sha] of peeled) refs.set(name, sha);
  return { head, refs };
}

export async function fetchCommitArchive(remote: GitRemote, request: FetchRequest, options: GitOptions = {}): Promise<FetchedCommit> {
  checkRemote(remote);
  const sha = request.sha.toLowerCase();
  if (!isSha(sha)) throw new OutpostError('validation_failed', `"${request.sha.slice(0, 80)}" is not a commit sha (40 or 64 hexadecimal characters)`);
  if (request.ref !== undefined && !/^refs\/[A-Za-z0-9._/+-]+$/.test(request.ref)) {
    throw new OutpostError('validation_failed', `"${request.ref.slice(0, 80)}" is not a full ref name such as refs/heads/main`);
  }
  const session = await GitSession.open(remote, options);
  try {
    await session.git(['init', '-q', '--template=', `--object-format=${sha.length === 64 ? 'sha256' : 'sha1'}`], 'preparing a repository');
    await session.git(['remote', 'add', 'origin', remote.url], 'preparing a repository');
    await fetchCommit(session, sha, request.ref);
    const commitSha = (await session.git(['rev-parse', '--verify', '--quiet', `${sha}^{commit}`], 'reading the commit')).toString().trim();
    // Submodules need a checkout to land in; without them the tree is packed
    // straight from the object store, which is several times faster.
    if (request.submodules) {
      await session.git(['checkout', '-q', '--detach', commitSha], 'checking out the commit');
      await session.git(['submodule', 'update', '--init', '--recursive', '--depth=1'], 'fetching the submodules');
    }
    const commit = await readCommit(session, commitSha);
    const changedFiles = isSha(request.compareTo?.toLowerCase()) ? await changedSince(session, request.compareTo!.toLowerCase(), commitSha) : null;
    const archive = request.submodules ? await packWorktree(session.repository, request.maxBytes) : await archiveCommit(session, commitSha, request.maxBytes);
    return { archive, commit, changedFiles };
  } finally {
    await session.dispose();
  }
}

/**
 * Fetches just the commit. A server that will not send an unadvertised
 * commit (protocol v0 without allowReachableSHA1InWant) gets the ref hint
 * instead, deepened until the commit is among what came.
 */
async function fetchCommit(session: GitSession, sha: string, ref: string | undefined): Promise<void> {
  const bySha = await session.gitResult(['fetch', '-q', '--depth=1', '--no-tags', 'origin', sha]);
  if (bySha.exitCode === 0) return;
  if (ref === undefined || failureKindOf(bySha.stderr) !== 'commit') throw session.failure(`fetching commit ${sha}`, bySha.stderr);
  const hint = `+${ref}:refs/outpost/hint`;
  for (const depth of fallbackDepths) {
    await session.git(['fetch', '-q', `--depth=${depth}`, '--no-tags', 'origin', hint], `fetching ${ref}`);
    if (await hasCommit(session, sha)) return;
  }
  const shallow = await session.gitResult(['rev-parse', '--is-shallow-repository']);
  if (shallow.stdout.toString().trim() === 'true') {
    await session.git(['fetch', '-q', '--unshallow', '--no-tags', 'origin', hint], `fetching ${ref}`);
    if (await hasCommit(session, sha)) return;
  }
  throw new OutpostError('vcs_fetch_failed', `fetching commit ${sha} from ${session.remoteForMessages()} failed (commit not found: the server refused it by sha and it is not in the history of ${ref})`);
}

async function hasCommit(session: GitSession, sha: string): Promise<boolean> {
  return (await session.gitResult(['cat-file', '-e', `${sha}^{commit}`])).exitCode === 0;
}

async function readCommit(session: GitSession, sha: string): Promise<CommitInfo> {
  const output = await session.git(['log', '-1', '--no-color', '--format=%H%x00%an%x00%ae%x00%cI%x00%B', sha, '--'], 'reading the commit');
  const [fullSha = sha, authorName = '', authorEmail = '', committed = '', ...message] = output.toString('utf8').split('\0');
  const date = new Date(committed);
  return {
    sha: fullSha,
    message: message.join('\0').replace(/\n+$/, ''),
    authorName,
    authorEmail,
    committedAt: Number.isNaN(date.getTime()) ? committed : date.toISOString(),
  };
}

/** The paths that differ between the two commits, renames as both paths; null when the older commit cannot be had. */
async function changedSince(session: GitSession, compareTo: string, sha: string): Promise<string[] | null> {
  if (compareTo === sha) return [];
  const fetched = await session.gitResult(['fetch', '-q', '--depth=1', '--no-tags', 'origin', compareTo]);
  if (fetched.exitCode !== 0 && !(await hasCommit(session, compareTo))) return null;
  const diff = await session.gitResult(['diff', '--name-only', '-z', '--no-renames', '--no-ext-diff', compareTo, sha, '--']);
  if (diff.exitCode !== 0) return null;
  return diff.stdout.toString('utf8').split('\0').filter((name) => name !== '');
}

function isGitMetadata(entryPath: string): boolean {
  return entryPath.split(/[\\/]/).some((segment) => segment === '.git');
}

/**
 * The tree of a commit as a .tar.gz, by `git archive`: exactly what the
 * commit holds (no .git, links kept as links). The repository's own
 * export-ignore and export-subst attributes are switched off, so the
 * archive is the files as committed, as a checkout would have them.
 */
async function archiveCommit(session: GitSession, sha: string, maxBytes: number): Promise<Buffer> {
  await mkdir(path.join(session.repository, '.git', 'info'), { recursive: true });
  await writeFile(path.join(session.repository, '.git', 'info', 'attributes'), '* -export-ignore -export-subst\n');
  const result = await session.gitResult(['archive', '--format=tar.gz', sha], session.repository, maxBytes);
  if (result.overflowed) throw new OutpostError('vcs_archive_too_large', `the repository at this commit is more than ${maxBytes} bytes compressed, the upload limit`);
  if (result.exitCode !== 0) throw session.failure('packing the commit', result.stderr);
  return result.stdout;
}

/**
 * The checkout as a .tar.gz, links kept as links: the job operation's
 * extraction refuses links that escape the working directory, so uploads and
 * commits pass the same checks. Stops at maxBytes instead of buffering on.
 */
export async function packWorktree(directory: string, maxBytes: number): Promise<Buffer> {
  // Top-level names are listed (not ".") so archive paths carry no "./" prefix, as uploads have none.
  const entries = (await readdir(directory)).filter((name) => !isGitMetadata(name)).sort();
  if (entries.length === 0) return gzipSync(Buffer.alloc(1024));
  const { create } = await import('tar');
  const pack = create({ cwd: directory, gzip: true, portable: true, follow: false, filter: (entryPath) => !isGitMetadata(entryPath) }, entries);
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  // The directory is removed right after; a pack stopped early must not fail loudly on files that went away.
  pack.on('error', () => undefined);
  for await (const chunk of pack) {
    const buffer = Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > maxBytes) {
      tooLarge = true;
      break;
    }
    chunks.push(buffer);
  }
  if (tooLarge) {
    throw new OutpostError('vcs_archive_too_large', `the repository at this commit is more than ${maxBytes} bytes compressed, the upload limit`);
  }
  return Buffer.concat(chunks);
}
