// Runs the system `git` against a remote the caller does not control, so
// that nothing on this machine and nothing the remote sends changes what git
// does: a clean environment (no user or system config, no credential
// helpers, no prompts), credentials that never reach a command line, a URL
// or an error message, a deadline on every call, and submodules limited to
// the protocols the remote itself uses.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OutpostError } from '../protocol/errors.ts';
import type { VcsCredentials, VcsProviderKind } from './providers.ts';
import { gitInheritedEnvironment } from './git-config.ts';

export interface GitRemote {
  url: string;
  credentials: VcsCredentials;
  kind: VcsProviderKind;
}

export interface GitOptions {
  signal?: AbortSignal;
  /** The deadline of the whole operation (every git call in it), default 120 s. */
  timeoutMs?: number;
}

export const defaultGitTimeoutMs = 120_000;
const stderrKeptBytes = 64 * 1024;

/** The scheme git will use for a remote URL: `https`, `http`, `ssh`, `file`… (scp-like `user@host:path` is ssh). */
export function remoteScheme(url: string): string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  return match ? match[1]!.toLowerCase() : 'ssh';
}

function shellQuote(value: string): string {
  return `'${value.replaceAll('\'', '\'\\\'\'')}'`;
}

/** The Authorization header git sends over HTTP(S): Basic with the username given or the provider's usual one, else Bearer. */
function authorizationOf(kind: VcsProviderKind, credentials: VcsCredentials): string | null {
  const token = credentials.token;
  if (!token) return null;
  const basic = (username: string) => `Basic ${Buffer.from(`${username}:${token}`).toString('base64')}`;
  if (credentials.username) return basic(credentials.username);
  switch (kind) {
    case 'github':
    case 'gitea':
      return basic('x-access-token');
    case 'gitlab':
      return basic('oauth2');
    case 'bitbucket-dc':
    case 'git':
      // Bitbucket Data Center documents HTTP access tokens as Bearer for git;
      // a plain git server with a username in its credentials gets Basic above.
      return `Bearer ${token}`;
  }
}

/** Every string that would reveal a credential, longest first so a longer form is replaced before its parts. */
export function secretsOf(kind: VcsProviderKind, credentials: VcsCredentials): string[] {
  const secrets: string[] = [];
  const authorization = authorizationOf(kind, credentials);
  if (authorization) secrets.push(authorization, authorization.replace(/^(Basic|Bearer) /, ''));
  if (credentials.token) {
    secrets.push(credentials.token);
    if (credentials.username) secrets.push(`${credentials.username}:${credentials.token}`);
  }
  if (credentials.sshKey?.trim()) secrets.push(credentials.sshKey.trim());
  return [...new Set(secrets.filter((secret) => secret.length >= 4))].sort((a, b) => b.length - a.length);
}

/** Replaces every credential, and any user:password in a URL, with ***. */
export function scrub(text: string, secrets: readonly string[]): string {
  let scrubbed = text;
  for (const secret of secrets) scrubbed = scrubbed.replaceAll(secret, '***');
  return scrubbed.replace(/(\/\/)[^/@\s:]+:[^/@\s]+@/g, '$1***@');
}

/**
 * A private temporary directory for one operation: git's HOME, the SSH key
 * and known_hosts files, and the repository. `dispose()` removes all of it.
 */
export class GitSession {
  readonly directory: string;
  readonly repository: string;
  readonly remote: GitRemote;
  readonly secrets: string[];
  readonly signal: AbortSignal;
  private readonly callerSignal: AbortSignal | undefined;
  private readonly timeoutMs: number;
  private environment: Record<string, string> = {};

  private constructor(directory: string, remote: GitRemote, options: GitOptions) {
    this.directory = directory;
    this.repository = path.join(directory, 'repository');
    this.remote = remote;
    this.secrets = secretsOf(remote.kind, remote.credentials);
    this.timeoutMs = options.timeoutMs ?? defaultGitTimeoutMs;
    this.callerSignal = options.signal;
    const deadline = AbortSignal.timeout(this.timeoutMs);
    this.signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  }

  static async open(remote: GitRemote, options: GitOptions = {}): Promise<GitSession> {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'outpost-git-'));
    const session = new GitSession(directory, remote, options);
    try {
      await session.prepare();
      return session;
    } catch (error) {
      await session.dispose();
      throw error;
    }
  }

  async dispose(): Promise<void> {
    await rm(this.directory, { recursive: true, force: true, maxRetries: 3 });
  }

  /** The environment every git call of this session runs with. */
  get env(): Readonly<Record<string, string>> {
    return this.environment;
  }

  private async prepare(): Promise<void> {
    const home = path.join(this.directory, 'home');
    await mkdir(home, { mode: 0o700 });
    await mkdir(this.repository, { mode: 0o700 });
    const env: Record<string, string> = gitInheritedEnvironment();
    Object.assign(env, {
      HOME: home,
      XDG_CONFIG_HOME: home,
      // English messages: the error hints below read them.
      LC_ALL: 'C',
      LANG: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: '',
      SSH_ASKPASS: '',
      // Discovery never climbs out of this session into a repository above it.
      GIT_CEILING_DIRECTORIES: path.dirname(this.directory),
    });
    const config: [string, string][] = [
      ['credential.helper', ''],
      ['core.hooksPath', '/dev/null'],
      ['core.fsmonitor', 'false'],
      ['gc.auto', '0'],
      ['maintenance.auto', 'false'],
      ['advice.detachedHead', 'false'],
      ['fetch.recurseSubmodules', 'false'],
      ['log.showSignature', 'false'],
      // Only the protocols the remote itself uses, plus https and ssh for
      // submodules: never file:// (reads this machine), ext:: (runs commands)
      // or plain http, unless the remote is itself such a URL.
      ['protocol.allow', 'never'],
      ['protocol.https.allow', 'always'],
      ['protocol.ssh.allow', 'always'],
    ];
    const scheme = remoteScheme(this.remote.url);
    if (!['https', 'ssh'].includes(scheme)) config.push([`protocol.${scheme}.allow`, 'always']);
    const authorization = authorizationOf(this.remote.kind, this.remote.credentials);
    if (authorization && (scheme === 'https' || scheme === 'http')) {
      // Scoped to the remote's origin: a submodule on another host never sees the token.
      const origin = new URL(this.remote.url).origin;
      config.push([`http.${origin}/.extraHeader`, `Authorization: ${authorization}`]);
    }
    if (scheme === 'ssh') env.GIT_SSH_COMMAND = await this.sshCommand();
    config.forEach(([key, value], index) => {
      env[`GIT_CONFIG_KEY_${index}`] = key;
      env[`GIT_CONFIG_VALUE_${index}`] = value;
    });
    env.GIT_CONFIG_COUNT = String(config.length);
    this.environment = env;
  }

  /** ssh with this session's key and known hosts; paths only, so no secret reaches a process listing. */
  private async sshCommand(): Promise<string> {
    const knownHosts = path.join(this.directory, 'known_hosts');
    const { sshKey, knownHosts: hostKeys } = this.remote.credentials;
    await writeFile(knownHosts, hostKeys ? `${hostKeys.trim()}\n` : '', { mode: 0o600 });
    // -F /dev/null: this machine's ssh_config (other identities, proxies) plays no part.
    const options = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null'];
    // Without the provider's host keys there is nothing to check the server
    // against: accept-new with a known_hosts file that lives for this one
    // operation encrypts the connection but does not authenticate the host.
    // Configuring known hosts is what makes it authenticated.
    options.push('-o', hostKeys?.trim() ? 'StrictHostKeyChecking=yes' : 'StrictHostKeyChecking=accept-new');
    if (sshKey?.trim()) {
      const keyFile = path.join(this.directory, 'ssh_key');
      await writeFile(keyFile, `${sshKey.trim()}\n`, { mode: 0o600 });
      options.push('-i', keyFile, '-o', 'IdentitiesOnly=yes');
    }
    return ['ssh', ...options].map((part) => (/^[A-Za-z0-9_=/.,:@-]+$/.test(part) ? part : shellQuote(part))).join(' ');
  }

  /** Runs git in the session's repository; throws vcs_fetch_failed with git's scrubbed stderr when it fails. */
  async git(args: readonly string[], what: string): Promise<Buffer> {
    const result = await this.gitResult(args);
    if (result.exitCode !== 0) throw this.failure(what, result.stderr);
    return result.stdout;
  }

  /**
   * Runs git and returns whatever it produced, failed or not; only a deadline
   * or an abort throws. Past `maxStdoutBytes` git is stopped and `overflowed`
   * set, so a large output is never held whole.
   */
  async gitResult(args: readonly string[], cwd = this.repository, maxStdoutBytes = Number.POSITIVE_INFINITY): Promise<{ exitCode: number; stdout: Buffer; stderr: string; overflowed: boolean }> {
    this.throwIfAborted(args[0] ?? 'git');
    const child = spawn('git', args, {
      cwd,
      env: this.environment,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so an abort also stops the remote helpers and ssh it started.
      detached: true,
    });
    const stop = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    this.signal.addEventListener('abort', stop, { once: true });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let overflowed = false;
    let stderr = Buffer.alloc(0);
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdoutBytes) {
        if (!overflowed) stop();
        overflowed = true;
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > stderrKeptBytes) stderr = stderr.subarray(stderr.length - stderrKeptBytes);
    });
    try {
      const exitCode = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code) => resolve(code ?? -1));
      });
      this.throwIfAborted(args[0] ?? 'git');
      return { exitCode, stdout: Buffer.concat(stdout), stderr: stderr.toString('utf8'), overflowed };
    } catch (error) {
      if (error instanceof OutpostError || this.signal.aborted) throw error;
      throw new OutpostError('vcs_fetch_failed', `git could not be started: ${(error as Error).message}`);
    } finally {
      this.signal.removeEventListener('abort', stop);
    }
  }

  /** The caller's abort passes through as it is; the deadline becomes vcs_fetch_failed. */
  private throwIfAborted(command: string): void {
    if (!this.signal.aborted) return;
    if (this.callerSignal?.aborted) throw this.callerSignal.reason;
    throw new OutpostError('vcs_fetch_failed', `git ${command} of ${this.remoteForMessages()} did not finish within ${this.timeoutMs < 1000 ? `${this.timeoutMs} ms` : `${Math.round(this.timeoutMs / 1000)} s`}`);
  }

  remoteForMessages(): string {
    return scrub(this.remote.url, this.secrets);
  }

  /** vcs_fetch_failed naming the likely cause and the end of git's scrubbed stderr. */
  failure(what: string, stderr: string): OutpostError {
    const tail = scrub(stderr, this.secrets).trim().replace(/\s*\n\s*/g, ' | ').slice(-500);
    const hint = failureHint(stderr);
    return new OutpostError('vcs_fetch_failed', `${what} from ${this.remoteForMessages()} failed${hint ? ` (${hint})` : ''}${tail ? `: ${tail}` : ''}`);
  }
}

export type FailureKind = 'authentication' | 'repository' | 'commit' | 'host-key';

/** What git's stderr says went wrong, as far as its (English) messages tell. */
export function failureKindOf(stderr: string): FailureKind | null {
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(stderr)) return 'host-key';
  if (/Authentication failed|could not read (Username|Password)|Permission denied \(|returned error: (401|403)|Invalid username or (password|token)|HTTP Basic: Access denied/i.test(stderr)) {
    return 'authentication';
  }
  if (/not our ref|unadvertised object|couldn't find remote ref|no such remote ref|did not contain|not a valid object|bad object|unknown revision/i.test(stderr)) return 'commit';
  if (/[Rr]epository not found|does not appear to be a git repository|returned error: 404|does not exist|project you were looking for could not be found/.test(stderr)) {
    return 'repository';
  }
  return null;
}

function failureHint(stderr: string): string | null {
  switch (failureKindOf(stderr)) {
    case 'host-key':
      return 'the SSH host key does not match the known hosts configured for this provider';
    case 'authentication':
      return 'authentication failed: check the provider\'s token or SSH key and its access to the repository';
    case 'repository':
      return 'repository not found, or the credentials cannot see it';
    case 'commit':
      return 'commit not found in the repository';
    case null:
      return null;
  }
}
