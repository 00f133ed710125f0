// The four images of deploy/docker/, checked for real with the docker CLI:
// built by scripts/build-images.sh (which .ci/run runs with --local-bases),
// started, inspected. In CI (CI=true) a missing Docker daemon or image fails
// the suite; elsewhere it is skipped with the reason.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const packageJson = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string; license: string };

const images = ['server', 'agent', 'runner', 'agent-runner'].map((name) => `outpost/${name}`);
const runner = 'outpost/runner:latest';
const server = 'outpost/server:latest';
const agent = 'outpost/agent:latest';
const agentRunner = 'outpost/agent-runner:latest';

function unavailable(): string | undefined {
  let reason: string | undefined;
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 });
    const missing = images.filter((image) => {
      try {
        execFileSync('docker', ['image', 'inspect', `${image}:latest`], { stdio: 'ignore', timeout: 20_000 });
        return false;
      } catch {
        return true;
      }
    });
    if (missing.length > 0) reason = `the images ${missing.join(', ')} are not built (run scripts/build-images.sh --local-bases)`;
  } catch {
    reason = 'no Docker daemon answers `docker info` (start dockerd, or run as a user in the docker group)';
  }
  if (reason !== undefined && process.env.CI === 'true') throw new Error(`CI must test the Docker images, but ${reason}`);
  return reason;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function docker(args: readonly string[], timeoutMs = 60_000): Promise<Result> {
  try {
    const { stdout, stderr } = await execFileAsync('docker', [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? failed.message };
  }
}

/** stdout of a docker command that must succeed. */
async function dockerOk(args: readonly string[], timeoutMs?: number): Promise<string> {
  const result = await docker(args, timeoutMs);
  assert.equal(result.code, 0, `docker ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

interface ImageConfig {
  User: string;
  Env: string[] | null;
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  Labels: Record<string, string> | null;
  ExposedPorts: Record<string, unknown> | null;
  Volumes: Record<string, unknown> | null;
  Healthcheck?: { Test: string[] };
}

async function imageConfig(image: string): Promise<ImageConfig> {
  return JSON.parse(await dockerOk(['image', 'inspect', '--format', '{{json .Config}}', image])) as ImageConfig;
}

/** Runs `sh -c script` in the image, whatever its entrypoint. */
async function shell(image: string, script: string, extraArgs: readonly string[] = []): Promise<string> {
  return dockerOk(['run', '--rm', ...extraArgs, '--entrypoint', 'sh', image, '-c', script]);
}

const skip = unavailable();

describe('Docker images (deploy/docker)', { skip }, () => {
  const containers: string[] = [];
  after(async () => {
    for (const name of containers) await docker(['rm', '--force', '--volumes', name]);
  });

  test('all four exist, tagged latest and with the package version', async () => {
    for (const image of images) {
      const latest = (await dockerOk(['image', 'inspect', '--format', '{{.Id}}', `${image}:latest`])).trim();
      const versioned = (await dockerOk(['image', 'inspect', '--format', '{{.Id}}', `${image}:${packageJson.version}`])).trim();
      assert.equal(versioned, latest, `${image}:${packageJson.version} is not the same image as ${image}:latest`);
    }
  });

  test('each carries the OCI labels', async () => {
    for (const image of images) {
      const labels = (await imageConfig(`${image}:latest`)).Labels ?? {};
      assert.equal(labels['org.opencontainers.image.title'], image);
      assert.ok((labels['org.opencontainers.image.description'] ?? '').length >= 20, `${image}: description`);
      assert.match(labels['org.opencontainers.image.source'] ?? '', /^https:\/\//, `${image}: source`);
      assert.equal(labels['org.opencontainers.image.licenses'], packageJson.license, `${image}: licenses`);
      assert.equal(labels['org.opencontainers.image.version'], packageJson.version, `${image}: version`);
    }
  });

  test('runner: the job tools, uid/gid 1000 with HOME /home/runner, no Node', async () => {
    assert.equal((await imageConfig(runner)).User, '1000:1000');
    const out = await shell(
      runner,
      'id -u; id -g; echo "$HOME"; for tool in sh bash git curl jq unzip ssh; do command -v "$tool" || echo "missing $tool"; done; ' +
        'command -v node || echo "no node"; test -w "$HOME" && echo "home writable"',
    );
    const lines = out.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['1000', '1000', '/home/runner']);
    assert.doesNotMatch(out, /missing/, out);
    assert.ok(lines.includes('no node'), `outpost/runner must not ship Node:\n${out}`);
    assert.ok(lines.includes('home writable'), out);
    // The tools work, not only exist (shared libraries, CA certificates).
    await shell(runner, 'git --version && curl --version && jq --version && unzip -v >/dev/null && ssh -V && test -s /etc/ssl/certs/ca-certificates.crt');
  });

  test('server: non-root, `--help` prints the CLI help', async () => {
    const config = await imageConfig(server);
    assert.equal(config.User, '1000:1000');
    assert.deepEqual(config.Entrypoint, ['node', '/opt/outpost/bin/outpost.js']);
    assert.deepEqual(config.Cmd, ['server']);
    assert.ok(config.Env?.includes('OUTPOST_DATA_DIR=/var/lib/outpost'), String(config.Env));
    assert.ok(config.Env?.includes('OUTPOST_LISTEN=0.0.0.0:8480'), String(config.Env));
    assert.ok(config.ExposedPorts && '8480/tcp' in config.ExposedPorts);
    assert.ok(config.Volumes && '/var/lib/outpost' in config.Volumes);
    assert.equal(config.Healthcheck?.Test[0], 'CMD');
    assert.equal((await shell(server, 'id -u')).trim(), '1000');

    const help = await dockerOk(['run', '--rm', server, '--help']);
    assert.match(help, /^Usage: outpost /m);
    for (const command of ['server', 'agent', 'pool', 'workspace', 'run']) assert.match(help, new RegExp(`^  ${command} `, 'm'));
    // What runs is the compiled JavaScript (npm run build in the image's build stage): no TypeScript ships.
    const shipped = await shell(server, 'ls /opt/outpost; test -f /opt/outpost/dist/cli/main.js && echo built; find /opt/outpost/dist -name "*.ts" | head -n 3');
    assert.deepEqual(shipped.trim().split('\n'), ['bin', 'dist', 'examples', 'node_modules', 'package-lock.json', 'package.json', 'built']);
  });

  test('server: starts as its default command and its health check passes', async () => {
    const name = `outpost-images-test-server-${process.pid}`;
    containers.push(name);
    // A short interval: this checks the health command, not its timing.
    await dockerOk(['run', '--detach', '--name', name, '--health-interval', '1s', '--health-start-period', '0s', server]);
    let status = '';
    for (let attempt = 0; attempt < 60; attempt++) {
      const [health = '', state = ''] = (await dockerOk(['inspect', '--format', '{{.State.Health.Status}} {{.State.Status}}', name])).trim().split(' ');
      status = state === 'running' ? health : state;
      if (status === 'healthy' || state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const logs = await docker(['logs', name]);
    assert.equal(status, 'healthy', `server container is ${status}; its log:\n${logs.stdout}${logs.stderr}`);
    // Its data dir is writable by the server's user: the SQLite file is there.
    assert.match(await dockerOk(['exec', name, 'ls', '/var/lib/outpost']), /\S/);
  });

  test('agent: `--help` shows the agent command help; runs as root (the Docker socket)', async () => {
    const config = await imageConfig(agent);
    assert.ok(config.User === '' || config.User === 'root' || config.User === '0', `agent user: ${config.User}`);
    assert.deepEqual(config.Cmd, ['run']);
    const help = await dockerOk(['run', '--rm', agent, '--help']);
    assert.match(help, /^Usage: outpost agent /m);
    assert.match(help, /^ {2}run /m);
    assert.match(await dockerOk(['run', '--rm', agent, 'run', '--help']), /^Usage: outpost agent run/m);
  });

  test('agent: data dir and log format defaults yield to the user, under either name', async () => {
    // A fake `node` in front of PATH prints the environment the entrypoint
    // hands to the agent, instead of starting it.
    const probe = (args: string) =>
      'mkdir -p /tmp/fake && printf "#!/bin/sh\\nenv\\n" >/tmp/fake/node && chmod +x /tmp/fake/node && ' +
      `PATH=/tmp/fake:$PATH exec /usr/local/bin/outpost-agent-entrypoint ${args}`;
    const envOf = async (extraArgs: readonly string[]) => {
      const out = await shell(agent, probe('run'), extraArgs);
      return Object.fromEntries(out.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
    };

    const plain = await envOf([]);
    assert.equal(plain.OUTPOST_AGENT_DATA_DIR, '/var/lib/outpost-agent');
    assert.equal(plain.OUTPOST_AGENT_LOG_FORMAT, 'json');

    // The Scalr agent's `docker run -v /var/lib/scalr-agent:/var/lib/scalr-agent …`.
    const hostDir = await mkdtemp(path.join(os.tmpdir(), 'outpost-images-test-'));
    try {
      const scalrStyle = await envOf(['--volume', `${hostDir}:/var/lib/scalr-agent`]);
      assert.equal(scalrStyle.OUTPOST_AGENT_DATA_DIR, '/var/lib/scalr-agent');
    } finally {
      await rm(hostDir, { recursive: true, force: true });
    }

    const scalrNames = await envOf(['--env', 'SCALR_AGENT_DATA_DIR=/data', '--env', 'SCALR_AGENT_LOG_FORMAT=text']);
    assert.equal(scalrNames.OUTPOST_AGENT_DATA_DIR, undefined);
    assert.equal(scalrNames.OUTPOST_AGENT_LOG_FORMAT, undefined);
    assert.equal(scalrNames.SCALR_AGENT_DATA_DIR, '/data');
  });

  test('agent-runner: the agent plus the runner tools, as uid 1000', async () => {
    const config = await imageConfig(agentRunner);
    const agentConfig = await imageConfig(agent);
    assert.equal(config.User, '1000:1000');
    assert.deepEqual(config.Entrypoint, agentConfig.Entrypoint);
    assert.deepEqual(config.Cmd, ['run']);
    const out = await shell(agentRunner, 'id -u; for tool in node git curl jq unzip ssh; do command -v "$tool" || echo "missing $tool"; done; test -w /var/lib/outpost-agent && echo writable');
    assert.equal(out.trim().split('\n')[0], '1000');
    assert.doesNotMatch(out, /missing/, out);
    assert.match(out, /^writable$/m);
    assert.match(await dockerOk(['run', '--rm', agentRunner, '--help']), /^Usage: outpost agent /m);
  });

  // .ci/run installs docker-compose: CI must check the file.
  test('compose.yaml is valid for docker-compose', { skip: hasDockerCompose() || process.env.CI === 'true' ? false : 'docker-compose is not installed' }, async () => {
    const { stdout } = await execFileAsync('docker-compose', ['--file', path.join(repoRoot, 'deploy/docker/compose.yaml'), 'config'], {
      env: { ...process.env, OUTPOST_BOOTSTRAP_TOKEN: `opa_${'x'.repeat(40)}`, OUTPOST_AGENT_TOKEN: 'opp_test' },
      timeout: 60_000,
    });
    assert.match(stdout, /image: outpost\/server:latest/);
    assert.match(stdout, /image: outpost\/agent:latest/);
    assert.match(stdout, /\/var\/lib\/outpost-agent:\/var\/lib\/outpost-agent/);
  });
});

function hasDockerCompose(): boolean {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error('CI must check deploy/docker/compose.yaml, but docker-compose is not installed');
    return false;
  }
}
