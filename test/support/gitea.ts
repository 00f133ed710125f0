// A real Gitea for the tests of VCS-driven workspaces: repositories, pushes
// over smart HTTP, pull requests, commit statuses and webhooks, from the
// binary scripts/build-gitea.sh builds (`.ci/run` exports its path as
// OUTPOST_TEST_GITEA). SQLite, no SSH, no mail, no indexers, in-memory
// queues so webhooks go out at once; the binary's locales and templates come
// from the directory next to it (it is built without bindata).
//
// With `netns`, Gitea runs in that network namespace bound to its loopback,
// unreachable from the host, as a forge only an agent inside can reach; the
// helpers then make their API calls and git pushes from inside it, so the
// same methods work in both modes.
//
// What Gitea 1.27 sends with a webhook (type "gitea", content type json),
// checked by git-servers.test.ts: X-Gitea-Event / X-GitHub-Event /
// X-Gogs-Event (push, pull_request), X-Gitea-Event-Type (push,
// pull_request, pull_request_sync…), X-Gitea-Delivery (a UUID, also as
// X-GitHub-Delivery), X-Gitea-Signature (hex HMAC-SHA256 of the raw body
// with the secret, no prefix), X-Hub-Signature-256 ("sha256=" + the same)
// and X-Hub-Signature ("sha1=" + HMAC-SHA1). Pull request actions:
// "opened", then "synchronized" on a push to the head branch. Deliveries
// are not ordered: a pull request's "opened" may arrive before the push of
// its branch. There is no API listing a hook's deliveries, nor one to
// redeliver; POST …/hooks/{id}/tests sends a push event for the default
// branch's last commit with before == after and null file lists (testHook).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { commitAndPush, type PushOptions } from './git-http-server.ts';
import { requestInNetns, runCommand } from './netns.ts';
import { freePort } from './ports.ts';
import { logTail, spawnLogged } from './spawned-process.ts';

export const giteaVersion = '1.27.3';
const binaryVariable = 'OUTPOST_TEST_GITEA';

/**
 * For a suite that needs Gitea: the binary, or the reason to skip. Under
 * CI=true the reason is thrown instead: CI builds Gitea (scripts/build-gitea.sh).
 */
export function giteaForTests(what: string, env: NodeJS.ProcessEnv = process.env): { binary?: string; skip: string | false } {
  const binary = env[binaryVariable];
  let reason: string | undefined;
  if (binary === undefined || binary === '') reason = `${binaryVariable} is not set (bash scripts/build-gitea.sh builds Gitea ${giteaVersion} and prints its path)`;
  else if (!existsSync(binary)) reason = `${binaryVariable} names ${binary}, which does not exist`;
  if (reason === undefined) return { binary, skip: false };
  if (env.CI === 'true') throw new Error(`CI must ${what}, but ${reason}`);
  return { skip: reason };
}

export interface GiteaOptions {
  readonly binary: string;
  /** Gitea's work path (a new directory each start): configuration, database, repositories, logs. */
  readonly dir: string;
  /** 127.0.0.1 by default. */
  readonly host?: string;
  /** A free port by default (3000 inside a namespace, which has ports of its own). */
  readonly port?: number;
  /** Runs Gitea, and every helper's request, inside this network namespace. */
  readonly netns?: string;
}

export interface GiteaRepo {
  /** owner/name */
  readonly fullName: string;
  readonly cloneUrl: string;
  readonly htmlUrl: string;
}

export interface CommitStatus {
  readonly state: string;
  readonly context: string;
  readonly description: string;
  readonly target_url: string;
}

export interface Gitea {
  /** http://host:port (no trailing slash). */
  readonly url: string;
  /** An access token of the admin user, with scope "all". */
  readonly token: string;
  readonly username: string;
  readonly password: string;
  /** Gitea's own log (requests, webhook deliveries, errors). */
  readonly logFile: string;
  /** A REST call (path below /api/v1) with the token; throws on a status of 400 or more. */
  api<T = unknown>(method: string, apiPath: string, body?: unknown): Promise<T>;
  createRepo(name: string, options?: { private?: boolean }): Promise<GiteaRepo>;
  /** `repo` is 'name' (the admin's) or 'owner/name'; null in `files` deletes a path. Resolves with the pushed commit's sha. */
  pushFiles(repo: string, branch: string, files: Readonly<Record<string, string | null>>, message: string, options?: PushOptions): Promise<string>;
  createPullRequest(repo: string, pull: { head: string; base: string; title: string; body?: string }): Promise<{ number: number; htmlUrl: string }>;
  /** Posts a commit status as the admin (what a CI system, or Outpost, does). */
  createCommitStatus(repo: string, sha: string, status: { state: string; context: string; description?: string; target_url?: string }): Promise<void>;
  /** Every status posted for `sha`, newest first. */
  commitStatuses(repo: string, sha: string): Promise<CommitStatus[]>;
  /** A "gitea"-type webhook with a JSON body; events default to push and pull_request. Resolves with its id. */
  addWebhook(repo: string, hook: { url: string; secret: string; events?: readonly string[]; branchFilter?: string }): Promise<number>;
  /** Makes Gitea deliver a push event for the repository's last commit to hook `hookId`. */
  testHook(repo: string, hookId: number): Promise<void>;
  stop(): Promise<void>;
}

interface HttpResponse {
  readonly status: number;
  readonly body: string;
}
type Transport = (request: { url: string; method: string; headers: Record<string, string>; body?: string }) => Promise<HttpResponse>;

export async function startGitea(options: GiteaOptions): Promise<Gitea> {
  const dir = path.resolve(options.dir);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (options.netns === undefined ? await freePort() : 3000);
  const url = `http://${host}:${port}`;
  const staticRoot = path.dirname(path.resolve(options.binary));
  if (!existsSync(path.join(staticRoot, 'options', 'locale'))) {
    throw new Error(`Gitea's options/ is not next to ${options.binary}: build it with scripts/build-gitea.sh, which copies options/, templates/ and public/ there`);
  }
  await mkdir(path.join(dir, 'log'), { recursive: true });
  const configFile = path.join(dir, 'app.ini');
  await writeFile(configFile, appIni({ dir, host, port, url, staticRoot }));
  const prefix = options.netns === undefined ? [] : ['ip', 'netns', 'exec', options.netns];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: path.join(dir, 'home'), USER: os.userInfo().username, GITEA_WORK_DIR: dir };
  const cli = [...prefix, options.binary, '--config', configFile, '--work-path', dir];
  const logFile = path.join(dir, 'log', 'gitea.log');
  const processLog = path.join(dir, 'gitea-process.log');
  const server = spawnLogged({ command: cli[0]!, args: [...cli.slice(1), 'web'], env, cwd: dir, logFile: processLog });
  const diagnostics = (): string => `--- ${processLog}\n${logTail(processLog, 20)}\n--- ${logFile}\n${logTail(logFile, 40)}`;

  const transport: Transport =
    options.netns === undefined
      ? async (request) => {
          const response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: AbortSignal.timeout(30_000) });
          return { status: response.status, body: await response.text() };
        }
      : (request) => requestInNetns(options.netns!, request);

  try {
    await waitForVersion(url, transport, () => server.hasExited(), diagnostics);
    const username = 'outpost-admin';
    const password = `pw-${randomBytes(12).toString('hex')}`;
    await runCommand([...cli, 'admin', 'user', 'create', '--admin', '--username', username, '--password', password, '--email', `${username}@outpost.invalid`, '--must-change-password=false'], { env, cwd: dir });
    const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    const created = await call<{ sha1: string }>(transport, url, basic, 'POST', `/users/${username}/tokens`, { name: 'outpost-tests', scopes: ['all'] });
    const token = created.sha1;
    const auth = `token ${token}`;
    const api = <T>(method: string, apiPath: string, body?: unknown): Promise<T> => call<T>(transport, url, auth, method, apiPath, body);
    const full = (repo: string): string => (repo.includes('/') ? repo : `${username}/${repo}`);
    const withCredentials = url.replace('http://', `http://${username}:${password}@`);

    return {
      url,
      token,
      username,
      password,
      logFile,
      api,
      async createRepo(name, repoOptions = {}) {
        const repo = await api<{ full_name: string; clone_url: string; html_url: string }>('POST', '/user/repos', {
          name,
          private: repoOptions.private ?? false,
          auto_init: false,
          default_branch: 'main',
        });
        return { fullName: repo.full_name, cloneUrl: repo.clone_url, htmlUrl: repo.html_url };
      },
      pushFiles: (repo, branch, files, message, pushOptions) =>
        commitAndPush({ remoteUrl: `${withCredentials}/${full(repo)}.git`, scratchDir: path.join(dir, 'scratch'), branch, files, message, commandPrefix: prefix, ...pushOptions }),
      async createPullRequest(repo, pull) {
        const created = await api<{ number: number; html_url: string }>('POST', `/repos/${full(repo)}/pulls`, pull);
        return { number: created.number, htmlUrl: created.html_url };
      },
      async createCommitStatus(repo, sha, status) {
        await api('POST', `/repos/${full(repo)}/statuses/${sha}`, status);
      },
      async commitStatuses(repo, sha) {
        // Gitea names a status's state `status` in these objects (the combined status uses `state`).
        const statuses = await api<Array<{ status: string; context: string; description: string; target_url: string }>>('GET', `/repos/${full(repo)}/commits/${sha}/statuses?limit=50`);
        return statuses.map((status) => ({ state: status.status, context: status.context, description: status.description, target_url: status.target_url }));
      },
      async addWebhook(repo, hook) {
        const created = await api<{ id: number }>('POST', `/repos/${full(repo)}/hooks`, {
          type: 'gitea',
          active: true,
          events: hook.events ?? ['push', 'pull_request'],
          branch_filter: hook.branchFilter ?? '*',
          config: { url: hook.url, content_type: 'json', secret: hook.secret },
        });
        return created.id;
      },
      async testHook(repo, hookId) {
        await api('POST', `/repos/${full(repo)}/hooks/${hookId}/tests`);
      },
      async stop() {
        await server.stop('SIGTERM', 10_000);
      },
    };
  } catch (error) {
    await server.killGroup();
    throw new Error(`${(error as Error).message}\n${diagnostics()}`, { cause: error });
  }
}

async function call<T>(transport: Transport, url: string, authorization: string, method: string, apiPath: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await transport({ url: `${url}/api/v1${apiPath}`, method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status >= 400) throw new Error(`Gitea ${method} ${apiPath} answered ${response.status}: ${response.body}`);
  return (response.body === '' ? undefined : JSON.parse(response.body)) as T;
}

async function waitForVersion(url: string, transport: Transport, exited: () => boolean, diagnostics: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = '';
  for (;;) {
    if (exited()) throw new Error(`Gitea exited before answering\n${diagnostics()}`);
    try {
      const response = await transport({ url: `${url}/api/v1/version`, method: 'GET', headers: {} });
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`Gitea at ${url} did not answer /api/v1/version within 60 s (last: ${last})`);
    await sleep(200);
  }
}

function appIni(settings: { dir: string; host: string; port: number; url: string; staticRoot: string }): string {
  const { dir } = settings;
  const root = process.getuid?.() === 0;
  const sections: Record<string, Record<string, string | number | boolean>> = {
    '': {
      APP_NAME: 'Outpost test forge',
      RUN_MODE: 'prod',
      RUN_USER: os.userInfo().username,
      WORK_PATH: dir,
      // Gitea refuses to run as root without this; CI runs tests as root.
      ...(root ? { I_AM_BEING_UNSAFE_RUNNING_AS_ROOT: true } : {}),
    },
    server: {
      PROTOCOL: 'http',
      HTTP_ADDR: settings.host,
      HTTP_PORT: settings.port,
      ROOT_URL: `${settings.url}/`,
      LOCAL_ROOT_URL: `${settings.url}/`,
      STATIC_ROOT_PATH: settings.staticRoot,
      APP_DATA_PATH: path.join(dir, 'data'),
      DISABLE_SSH: true,
      START_SSH_SERVER: false,
      OFFLINE_MODE: true,
      LFS_START_SERVER: false,
    },
    database: { DB_TYPE: 'sqlite3', PATH: path.join(dir, 'data', 'gitea.db') },
    repository: { ROOT: path.join(dir, 'repositories'), DEFAULT_BRANCH: 'main' },
    security: {
      INSTALL_LOCK: true,
      SECRET_KEY: randomBytes(32).toString('hex'),
      INTERNAL_TOKEN: randomBytes(32).toString('hex'),
      // Webhooks may go to loopback and private addresses (the test's
      // receivers, a namespace's host side); in [security] since 1.27.
      ALLOWED_HOST_LIST: '*',
    },
    webhook: { DELIVER_TIMEOUT: 5, SKIP_TLS_VERIFY: true },
    // In-memory queues: deliveries go out as soon as the event happens, and
    // nothing is left on disk to replay at the next start.
    queue: { TYPE: 'channel' },
    indexer: { REPO_INDEXER_ENABLED: false, ISSUE_INDEXER_TYPE: 'db' },
    service: { DISABLE_REGISTRATION: true },
    mailer: { ENABLED: false },
    oauth2: { ENABLED: false },
    actions: { ENABLED: false },
    packages: { ENABLED: false },
    picture: { DISABLE_GRAVATAR: true, ENABLE_FEDERATED_AVATAR: false },
    session: { PROVIDER: 'memory' },
    cache: { ADAPTER: 'memory' },
    'cron.update_checker': { ENABLED: false },
    log: { MODE: 'file', LEVEL: 'Info', ROOT_PATH: path.join(dir, 'log') },
  };
  return Object.entries(sections)
    .map(([name, keys]) => [name === '' ? '' : `[${name}]`, ...Object.entries(keys).map(([key, value]) => `${key} = ${String(value)}`)].filter((line) => line !== '').join('\n'))
    .join('\n\n')
    .concat('\n');
}
