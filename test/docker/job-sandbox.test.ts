// What a job container sees, with a docker-driver agent on the host running
// from this checkout: none of the app directory beyond the job operation's
// runtime (the checkout's .outpost/ holds a server's database, deploy/docker/
// .env the admin token), none of the Docker client settings of the agent,
// and a process limit. Checked from inside, by the apply's provisioner.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRun, readLog, relatedId, uploadConfiguration } from '../support/api-calls.ts';
import { dockerUnavailable, runnerImage, setupDockerCluster } from '../support/docker-cluster.ts';

const appRoot = fileURLToPath(new URL('../..', import.meta.url));

describe('job sandbox (docker driver)', { skip: dockerUnavailable([runnerImage]) ?? false }, () => {
  test('a job container sees no file of the app directory outside the runtime, no DOCKER_* variable, and has a pids limit', async (t) => {
    // Files where a checkout keeps secrets: its .outpost/ dir, and next to package.json.
    const marker = `outpost-sandbox-marker-${randomBytes(6).toString('hex')}`;
    const secretFiles = [path.join(appRoot, '.outpost', marker), path.join(appRoot, `.${marker}`)];
    await mkdir(path.join(appRoot, '.outpost'), { recursive: true });
    for (const file of secretFiles) await writeFile(file, 'secret\n', { mode: 0o644 });
    t.after(() => Promise.all(secretFiles.map((file) => rm(file, { force: true }))));

    const cluster = await setupDockerCluster(t, { agentEnv: { DOCKER_HOST: 'unix:///var/run/docker.sock', DOCKER_CONFIG: '/nonexistent' } });
    const probe = [
      `echo "marker-hits:[$(find / -path /proc -prune -o -path /sys -prune -o -name '*${marker}' -print 2>/dev/null | tr '\\n' ' ')]"`,
      `echo "package-json-dirs:[$(ls -d /outpost/shared/*/package.json 2>/dev/null | tr '\\n' ' ')]"`,
      `echo "docker-env:[$(env | grep '^DOCKER_' | cut -d= -f1 | tr '\\n' ' ')]"`,
      `echo "pids-max:[$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)]"`,
    ].join('; ');
    const config = {
      'main.tf': `
resource "terraform_data" "probe" {
  provisioner "local-exec" {
    command = <<-EOT
      ${probe}
    EOT
  }
}
`,
    };
    const cv = await uploadConfiguration(cluster.server, cluster.workspace.id, config);
    const run = await createRun(cluster.server, cluster.workspace.id, cv);
    await cluster.waitFor(run.id, ['applied']);
    const log = await readLog(cluster.server, relatedId(run, 'apply'));

    assert.match(log, /\(local-exec\): marker-hits:\[\]/, `a job container can read a file of the app directory:\n${log}`);
    // The one package.json shared is the runtime's (the app's own is not shared).
    const packageJsons = /\(local-exec\): package-json-dirs:\[([^\]]*)\]/.exec(log)?.[1]?.trim().split(' ').filter(Boolean) ?? [];
    assert.equal(packageJsons.length, 1, log);
    assert.match(packageJsons[0]!, /^\/outpost\/shared\/\d+-job-[0-9a-f]+\/package\.json$/, log);
    assert.match(log, /\(local-exec\): docker-env:\[\]/, `DOCKER_* variables reach the job:\n${log}`);
    assert.match(log, /\(local-exec\): pids-max:\[4096\]/, log);
  });
});
