// `outpost launcher` as a process for tests and benchmarks, from the
// sources, on a free loopback port; killed when the test ends. Also an
// OpenTofu binary the agents it starts can run: no release site is
// reachable here, so they get the locally built one, copied where their
// user (uid 1000 in outpost/agent-runner) may read it and mounted read-only.
import { chmod, copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { registerProcessCleanup, type TestHooks } from './cluster.ts';
import { cliCommand } from './cluster-environment.ts';
import { freePort } from './ports.ts';
import { readLog, spawnLogged } from './spawned-process.ts';
import { tofuBinary } from './toolchain.ts';
import { waitUntil } from './waits.ts';

export interface LauncherHandle {
  readonly url: string;
  log(): string;
}

export async function startLauncher(t: TestHooks, env: Readonly<Record<string, string>>): Promise<LauncherHandle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-launcher-'));
  const port = await freePort();
  const logFile = path.join(dir, 'launcher.log');
  const child = spawnLogged({
    ...cliCommand(['launcher']),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', OUTPOST_LAUNCHER_LISTEN: `127.0.0.1:${port}`, OUTPOST_LAUNCHER_LOG_FORMAT: 'json', ...env },
    cwd: dir,
    logFile,
  });
  registerProcessCleanup(t, {
    logFile,
    async cleanup() {
      await child.killGroup();
      await rm(dir, { recursive: true, force: true });
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('the launcher to answer', async () => ((await fetch(`${url}/healthz`).catch(() => undefined))?.ok ? true : undefined), () => readLog(logFile), 30_000);
  return { url, log: () => readLog(logFile) };
}

/** The test OpenTofu in a directory any user may read, for a container's read-only mount. */
export async function engineForContainers(t: TestHooks): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-engine-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const tofu = path.join(dir, 'tofu');
  await copyFile(tofuBinary(), tofu);
  await chmod(tofu, 0o755);
  return tofu;
}
