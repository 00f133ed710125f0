// OpenSSH's sshd on loopback serving bare git repositories, for the tests of
// plain git over SSH: a host key and a client key made for the test, the
// client key the only one authorized, no passwords, no PAM. Git runs
// git-upload-pack through the login shell, as on any git server over SSH.
// The binary comes from scripts/fetch-sshd.sh (OUTPOST_TEST_SSHD).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';
import { spawnLogged } from './spawned-process.ts';
import { waitUntil } from './waits.ts';

const run = promisify(execFile);
const binaryVariable = 'OUTPOST_TEST_SSHD';

/** For a suite that needs sshd: the binary, or the reason to skip. Under CI=true the reason is thrown instead: CI fetches it. */
export function sshdForTests(what: string, env: NodeJS.ProcessEnv = process.env): { binary?: string; skip: string | false } {
  const binary = env[binaryVariable];
  let reason: string | undefined;
  if (!binary) reason = `${binaryVariable} is not set (bash scripts/fetch-sshd.sh fetches sshd and prints its path)`;
  else if (!existsSync(binary)) reason = `${binaryVariable} names ${binary}, which does not exist`;
  else if (process.getuid?.() !== 0) reason = 'sshd authenticates other users only when started as root';
  if (reason === undefined) return { binary, skip: false };
  if (env.CI === 'true') throw new Error(`CI must ${what}, but ${reason}`);
  return { skip: reason };
}

export interface SshGitServer {
  /** ssh://<user>@127.0.0.1:<port><bareRepository> */
  urlOf(bareRepository: string): string;
  /** The client's private key (OpenSSH format): the provider's ssh-key. */
  readonly clientKey: string;
  /** The known_hosts line of this server's host key. */
  readonly knownHosts: string;
  /** sshd's log: "Accepted publickey …" per authenticated connection. */
  log(): string;
  stop(): Promise<void>;
}

export async function startSshGitServer(binary: string): Promise<SshGitServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-sshd-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'outpost-test', '-f', path.join(dir, 'client_key')]);
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(path.join(dir, 'client_key.pub')), { mode: 0o600 });
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      // The test's temporary directory is not laid out as a home directory.
      'StrictModes no',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  // sshd's privilege separation directory (made by the package's scripts, which did not run).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const libraries = readFileSync(path.join(path.dirname(binary), '..', '..', '.library-path'), 'utf8').trim();
  const logFile = path.join(dir, 'sshd.log');
  const daemon = spawnLogged({ command: binary, args: ['-D', '-e', '-f', config], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LD_LIBRARY_PATH: libraries }, cwd: dir, logFile });
  const read = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  await waitUntil(
    'sshd to listen',
    () => new Promise<true | undefined>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(daemon.hasExited() ? (() => { throw new Error(`sshd exited:\n${read()}`); })() : undefined));
    }),
    read,
    15_000,
  );
  const hostKey = (await readFile(path.join(dir, 'host_key.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const user = os.userInfo().username;
  return {
    urlOf: (bare) => `ssh://${user}@127.0.0.1:${port}${bare}`,
    clientKey: await readFile(path.join(dir, 'client_key'), 'utf8'),
    knownHosts: `[127.0.0.1]:${port} ${hostKey}`,
    log: read,
    async stop() {
      await daemon.stop('SIGTERM', 5_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
