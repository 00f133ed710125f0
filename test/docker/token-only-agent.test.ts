// The Scalr agent's VCS-agent command with our image: only the pool token, no Docker
// socket, no data dir mount, no URL:
//
//   docker run -d -e SCALR_AGENT_TOKEN=<pool token> outpost/agent:latest run
//
// The pool token carries the server's public URL (the default bridge's
// gateway, which containers reach), so the agent finds the server by itself.
// With no Docker daemon answering in its container it picks the local driver,
// says so and why, and registers: the pool lists it idle with driver local.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { createPool, listAgents, type Agent } from '../support/api-calls.ts';
import { processLogs, waitUntil } from '../support/waits.ts';
import { startContainerReachableServer } from '../support/container-reachable-server.ts';
import { agentImage, docker, dockerCli, dockerUnavailable, removeContainersAfter } from '../support/docker-cluster.ts';

const unavailable = dockerUnavailable([agentImage]);

/** Marks the agent container this file starts, for cleanup. */
const testLabel = 'io.outpost.e2e-test';

interface LogLine {
  msg?: string;
  driver?: string;
  reason?: string;
}

/** The agent's JSON log lines (the image logs JSON by default). */
function logLines(text: string): LogLine[] {
  return text.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

describe('the token-only agent container (the Scalr agent\'s VCS agent)', { skip: unavailable ?? false }, () => {
  test('starts with only SCALR_AGENT_TOKEN, chooses the local driver because no Docker daemon answers, and registers idle', async (t: TestContext) => {
    const { server, containerUrl } = await startContainerReachableServer(t);
    const pool = await createPool(server);

    const unique = randomBytes(5).toString('hex');
    const name = `outpost-e2e-token-only-${unique}`;
    removeContainersAfter(t, `${testLabel}=${unique}`);
    // The Scalr agent's command as written, with our image; --name and --label only
    // so the test can find and remove the container.
    await docker(['run', '-d', '--name', name, '--label', `${testLabel}=${unique}`, '-e', `SCALR_AGENT_TOKEN=${pool.token}`, agentImage, 'run']);

    const agentLogs = async (): Promise<string> => {
      const logs = await dockerCli(['logs', name]);
      return logs.stdout + logs.stderr;
    };
    const describeAll = async (): Promise<string> => {
      const state = await dockerCli(['inspect', '--format', '{{.State.Status}} (exit code {{.State.ExitCode}})', name]);
      return [
        `server URL for containers: ${containerUrl}`,
        `agent container ${name}: ${state.stdout.trim() || state.stderr.trim()}`,
        `--- docker logs ${name}\n${await agentLogs()}`,
        processLogs([server]),
      ].join('\n');
    };

    // The agent names itself after its host name, the container's short id.
    const hostname = (await docker(['inspect', '--format', '{{.Config.Hostname}}', name])).trim();
    const agent = await waitUntil(
      `the token-only agent ${hostname} to register in pool ${pool.id}`,
      async () => (await listAgents(server, pool.id)).find((a) => a.attributes.name === hostname),
      describeAll,
      60_000,
    );
    const attributes = (agent as Agent & { attributes: { driver?: string } }).attributes;
    assert.equal(attributes.status, 'idle', `${JSON.stringify(attributes)}\n${await describeAll()}`);
    assert.equal(attributes.driver, 'local', `${JSON.stringify(attributes)}\n${await describeAll()}`);

    // It said which driver it chose and why: nothing answers at the default socket.
    const selected = logLines(await agentLogs()).filter((line) => line.msg === 'driver selected');
    assert.equal(selected.length, 1, `one "driver selected" line expected:\n${await describeAll()}`);
    assert.equal(selected[0]!.driver, 'local', await describeAll());
    assert.match(selected[0]!.reason ?? '', /^no Docker daemon answers at unix:\/\/\/var\/run\/docker\.sock \(.+\)$/, await describeAll());

    // And it keeps running, registered (not exited after registering).
    assert.equal((await docker(['inspect', '--format', '{{.State.Running}}', name])).trim(), 'true', await describeAll());
    assert.equal((await listAgents(server, pool.id)).length, 1, await describeAll());
  });
});
