// A plain git server over smart HTTP for tests: Debian git's own
// `git http-backend` behind a Node http server on loopback, as a CGI program
// (the way a web server runs it), with optional basic auth. Repositories are
// bare ones under `root`; tests push to them and fetch from them with a real
// git client, and read the request log to see who asked for what.
//
// Also home of commitAndPush, the git client side the Gitea helper shares:
// a commit of given files pushed to a branch over HTTP.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { runCommand } from './netns.ts';

export interface GitHttpServerOptions {
  /** Directory the bare repositories live in (GIT_PROJECT_ROOT). */
  readonly root: string;
  /** When set, every request needs these credentials (basic auth); others get 401. */
  readonly auth?: { readonly username: string; readonly password: string };
}

export interface GitHttpRequest {
  readonly method: string;
  /** Path without the query, e.g. /app.git/info/refs. */
  readonly path: string;
  /** The query string without '?', e.g. service=git-upload-pack. */
  readonly query: string;
  /** The authenticated user; undefined when the request had no (valid) credentials. */
  readonly user: string | undefined;
  readonly status: number;
  /** The request body's Content-Encoding (git gzips large fetch negotiations). */
  readonly contentEncoding: string | undefined;
}

export interface GitHttpRepo {
  readonly name: string;
  /** http://127.0.0.1:port/<name>.git, without credentials. */
  readonly cloneUrl: string;
  /** The same with the credentials in it (equal to cloneUrl without auth). */
  readonly authenticatedUrl: string;
  /** The bare repository on disk. */
  readonly dir: string;
}

export interface GitHttpServer {
  /** http://127.0.0.1:port (no trailing slash). */
  readonly url: string;
  readonly requests: GitHttpRequest[];
  createRepo(name: string): Promise<GitHttpRepo>;
  /** Commits `files` (null deletes a path) on `branch` and pushes; resolves with the commit's sha. */
  pushFiles(name: string, branch: string, files: Readonly<Record<string, string | null>>, message: string, options?: PushOptions): Promise<string>;
  close(): Promise<void>;
}

export interface PushOptions {
  readonly author?: { readonly name: string; readonly email: string };
  /** Where a new branch starts; 'main' by default. */
  readonly from?: string;
}

export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const root = path.resolve(options.root);
  await mkdir(root, { recursive: true });
  const requests: GitHttpRequest[] = [];
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://git.invalid');
    const user = authenticatedUser(request, options.auth);
    const log = (status: number): void => {
      requests.push({ method: request.method ?? 'GET', path: url.pathname, query: url.search.replace(/^\?/, ''), user, status, contentEncoding: request.headers['content-encoding'] });
    };
    if (options.auth !== undefined && user === undefined) {
      log(401);
      request.resume();
      response.writeHead(401, { 'www-authenticate': 'Basic realm="outpost-test-git"', 'content-type': 'text/plain' }).end('authentication required\n');
      return;
    }
    runBackend(root, request, response, url, user, log);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const credentials = options.auth === undefined ? '' : `${encodeURIComponent(options.auth.username)}:${encodeURIComponent(options.auth.password)}@`;
  const repoOf = (name: string): GitHttpRepo => ({
    name,
    cloneUrl: `${url}/${name}.git`,
    authenticatedUrl: `${url.replace('http://', `http://${credentials}`)}/${name}.git`,
    dir: path.join(root, `${name}.git`),
  });
  return {
    url,
    requests,
    async createRepo(name) {
      const repo = repoOf(name);
      await runCommand(['git', 'init', '--quiet', '--bare', '--initial-branch=main', repo.dir], { env: gitEnvironment(root) });
      // Pushes over HTTP, and fetches of a commit by its sha that no ref
      // points at (protocol v0 refuses those by default; v2 allows them).
      for (const [key, value] of [
        ['http.receivepack', 'true'],
        ['uploadpack.allowAnySHA1InWant', 'true'],
        ['uploadpack.allowReachableSHA1InWant', 'true'],
        ['uploadpack.allowTipSHA1InWant', 'true'],
      ] as const) {
        await runCommand(['git', '--git-dir', repo.dir, 'config', key, value], { env: gitEnvironment(root) });
      }
      return repo;
    },
    pushFiles: (name, branch, files, message, pushOptions) =>
      commitAndPush({ remoteUrl: repoOf(name).authenticatedUrl, scratchDir: root, branch, files, message, ...pushOptions }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function authenticatedUser(request: http.IncomingMessage, auth: GitHttpServerOptions['auth']): string | undefined {
  const header = request.headers.authorization ?? '';
  const match = /^Basic\s+(\S+)$/i.exec(header);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const username = colon < 0 ? decoded : decoded.slice(0, colon);
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  if (auth === undefined) return username;
  return username === auth.username && password === auth.password ? username : undefined;
}

// The CGI contract: the request as environment variables and the body on
// stdin; the response as header lines, a blank line, then the body, with
// the status in a `Status:` header (200 when absent).
function runBackend(root: string, request: http.IncomingMessage, response: http.ServerResponse, url: URL, user: string | undefined, log: (status: number) => void): void {
  const env: Record<string, string> = {
    ...gitEnvironment(root),
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: request.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    REMOTE_ADDR: request.socket.remoteAddress ?? '127.0.0.1',
    SERVER_PROTOCOL: `HTTP/${request.httpVersion}`,
  };
  if (user !== undefined) env.REMOTE_USER = user;
  if (request.headers['content-type'] !== undefined) env.CONTENT_TYPE = request.headers['content-type'];
  if (request.headers['content-length'] !== undefined) env.CONTENT_LENGTH = request.headers['content-length'];
  // http-backend inflates a gzip body itself; protocol v2 is asked for in Git-Protocol.
  if (request.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = request.headers['content-encoding'];
  const gitProtocol = request.headers['git-protocol'];
  if (typeof gitProtocol === 'string') env.HTTP_GIT_PROTOCOL = gitProtocol;

  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  request.pipe(child.stdin);
  child.stdin.on('error', () => {
    // The backend may answer (an error) before reading the whole body.
  });
  let head = Buffer.alloc(0);
  let headersSent = false;
  const fail = (message: string): void => {
    if (headersSent) {
      response.destroy();
      return;
    }
    headersSent = true;
    log(500);
    response.writeHead(500, { 'content-type': 'text/plain' }).end(`${message}\n`);
  };
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      response.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = headerEnd(head);
    if (end === undefined) return;
    const { status, headers } = parseCgiHeaders(head.subarray(0, end.index).toString('latin1'));
    headersSent = true;
    log(status);
    response.writeHead(status, headers);
    response.write(head.subarray(end.index + end.length));
  });
  child.once('error', (error) => fail(`git http-backend: ${error.message}`));
  child.once('close', (code) => {
    if (!headersSent) fail(`git http-backend exited ${code} without a response: ${Buffer.concat(stderr).toString('utf8').trim()}`);
    else response.end();
  });
}

function headerEnd(buffer: Buffer): { index: number; length: number } | undefined {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { index: crlf, length: 4 };
  if (lf >= 0) return { index: lf, length: 2 };
  return undefined;
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string[]> } {
  let status = 200;
  const headers: Record<string, string[]> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else (headers[name] ??= []).push(value);
  }
  return { status, headers };
}

/** An environment for git that ignores the machine's and the user's configuration and never prompts. */
export function gitEnvironment(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
  };
}

export interface CommitAndPushOptions extends PushOptions {
  /** The remote, with credentials in it when the server needs them. */
  readonly remoteUrl: string;
  /** A directory for the temporary clone. */
  readonly scratchDir: string;
  readonly branch: string;
  readonly files: Readonly<Record<string, string | null>>;
  readonly message: string;
  /** Prefix for every git command, e.g. ['ip', 'netns', 'exec', name] when the remote is only reachable there. */
  readonly commandPrefix?: readonly string[];
}

/**
 * Clones `remoteUrl`, commits `files` on `branch` (an existing branch, else
 * a new one from `from`, else — in an empty repository — the first commit)
 * and pushes it; resolves with the new commit's sha.
 */
export async function commitAndPush(options: CommitAndPushOptions): Promise<string> {
  await mkdir(options.scratchDir, { recursive: true });
  const work = await mkdtemp(path.join(options.scratchDir, 'push-'));
  const author = options.author ?? { name: 'Outpost Test', email: 'test@outpost.invalid' };
  const env = {
    ...gitEnvironment(work),
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: author.name,
    GIT_COMMITTER_EMAIL: author.email,
  };
  const git = (...args: string[]): Promise<string> => runCommand([...(options.commandPrefix ?? []), 'git', '-C', path.join(work, 'clone'), ...args], { env });
  try {
    await runCommand([...(options.commandPrefix ?? []), 'git', 'clone', '--quiet', options.remoteUrl, path.join(work, 'clone')], { env });
    const remoteBranches = (await git('for-each-ref', '--format=%(refname:lstrip=3)', 'refs/remotes/origin')).split('\n').filter((name) => name !== '' && name !== 'HEAD');
    const from = options.from ?? 'main';
    if (remoteBranches.includes(options.branch)) await git('checkout', '--quiet', '-B', options.branch, `origin/${options.branch}`);
    else if (remoteBranches.includes(from)) await git('checkout', '--quiet', '-B', options.branch, `origin/${from}`);
    else if (remoteBranches.length === 0) await git('symbolic-ref', 'HEAD', `refs/heads/${options.branch}`);
    else throw new Error(`cannot start branch ${options.branch}: the remote has no branch ${from} (it has ${remoteBranches.join(', ')})`);
    for (const [file, content] of Object.entries(options.files)) {
      const target = path.join(work, 'clone', file);
      if (content === null) await rm(target, { force: true });
      else {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, content);
      }
    }
    await git('add', '--all');
    await git('commit', '--quiet', '--allow-empty', '--message', options.message);
    await git('push', '--quiet', 'origin', `HEAD:refs/heads/${options.branch}`);
    return (await git('rev-parse', 'HEAD')).trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
