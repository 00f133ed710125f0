// Real git repositories for the tests of git.ts: a working copy to commit
// in, a bare copy to fetch from over file://, and a git server over HTTP
// (git http-backend behind a node:http server that checks Authorization).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Parser, type ReadEntry } from 'tar';
import { gitInheritedEnvironment } from './git-config.ts';

export const committedAt = '2024-05-06T07:08:09.000Z';

function gitEnvironment(home: string): NodeJS.ProcessEnv {
  return {
    PATH: gitInheritedEnvironment().PATH,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Ada Lovelace',
    GIT_AUTHOR_EMAIL: 'ada@example.com',
    GIT_COMMITTER_NAME: 'Ada Lovelace',
    GIT_COMMITTER_EMAIL: 'ada@example.com',
    GIT_AUTHOR_DATE: committedAt,
    GIT_COMMITTER_DATE: committedAt,
    GIT_ALLOW_PROTOCOL: 'file',
  };
}

/** A scratch directory with a working repository (`work`) and helpers to commit and publish it. */
export class TestRepository {
  readonly root: string;
  readonly work: string;
  readonly bare: string;

  constructor(name = 'repo') {
    this.root = mkdtempSync(path.join(os.tmpdir(), 'outpost-vcs-test-'));
    this.work = path.join(this.root, `${name}-work`);
    this.bare = path.join(this.root, `${name}.git`);
    mkdirSync(this.work);
    this.git('init', '-q', '--initial-branch=main');
  }

  git(...args: string[]): string {
    return execFileSync('git', ['-c', 'protocol.file.allow=always', ...args], { cwd: this.work, env: gitEnvironment(this.root), encoding: 'utf8' }).trim();
  }

  write(files: Record<string, string>): void {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(this.work, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
    }
  }

  /** Adds everything and commits; returns the commit's sha. */
  commit(message: string, files: Record<string, string> = {}): string {
    this.write(files);
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }

  /** Publishes the working repository's branches and tags to the bare repository (created on first use). */
  publish(): string {
    rmSync(this.bare, { recursive: true, force: true });
    execFileSync('git', ['clone', '-q', '--bare', this.work, this.bare], { env: gitEnvironment(this.root) });
    execFileSync('git', ['--git-dir', this.bare, 'symbolic-ref', 'HEAD', 'refs/heads/main'], { env: gitEnvironment(this.root) });
    return this.url;
  }

  get url(): string {
    return pathToFileURL(this.bare).href;
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export interface ArchiveEntry {
  type: string;
  linkpath?: string;
  content?: string;
}

/** The entries of a .tar.gz, by path. */
export async function readArchive(archive: Buffer): Promise<Map<string, ArchiveEntry>> {
  const entries = new Map<string, ArchiveEntry>();
  const parser = new Parser();
  const done = new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
  });
  parser.on('entry', (entry: ReadEntry) => {
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: Buffer) => chunks.push(chunk));
    entry.on('end', () => {
      entries.set(entry.path.replace(/\/$/, ''), {
        type: entry.type,
        ...(entry.linkpath ? { linkpath: entry.linkpath } : {}),
        ...(entry.type === 'File' ? { content: Buffer.concat(chunks).toString('utf8') } : {}),
      });
    });
  });
  parser.end(archive);
  await done;
  return entries;
}

export interface HttpGitServer {
  url: string;
  /** The Authorization headers the server received, in order. */
  authorizations: (string | undefined)[];
  close(): void;
}

/**
 * Serves the bare repositories under `projectRoot` with git http-backend.
 * Only requests with `authorization` are served (401 otherwise). Git-Protocol
 * is not passed on, so the server speaks protocol v0 and refuses to send a
 * commit no ref points at, as older servers do.
 */
export async function serveGitOverHttp(projectRoot: string, authorization: string): Promise<HttpGitServer> {
  const authorizations: (string | undefined)[] = [];
  const server: Server = createServer((request, response) => {
    authorizations.push(request.headers.authorization);
    if (request.headers.authorization !== authorization) {
      response.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('no');
      return;
    }
    runHttpBackend(projectRoot, request, (status, headers, body) => response.writeHead(status, headers).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    authorizations,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

function runHttpBackend(projectRoot: string, request: IncomingMessage, answer: (status: number, headers: Record<string, string>, body: Buffer) => void): void {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const backend = spawn('git', ['http-backend'], {
    env: {
      PATH: gitInheritedEnvironment().PATH,
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: request.method ?? 'GET',
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      ...(request.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: request.headers['content-encoding'] } : {}),
    },
  });
  request.pipe(backend.stdin);
  const output: Buffer[] = [];
  backend.stdout.on('data', (chunk: Buffer) => output.push(chunk));
  backend.on('close', () => {
    const all = Buffer.concat(output);
    const split = all.indexOf('\r\n\r\n');
    const headerText = all.subarray(0, split).toString('latin1');
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of headerText.split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'status') status = Number.parseInt(value, 10);
      else if (name) headers[name] = value;
    }
    answer(status, headers, all.subarray(split + 4));
  });
}
