import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerOptions, type ContainerSettings } from './container-spec.ts';

const settings: ContainerSettings = { image: 'outpost/runner', user: { uid: 1000, gid: 1000 }, cpuCores: 1, memoryMb: 512, pidsLimit: 4096, networkMode: 'host', hostDataDir: '/data' };
const spec = { jobId: 'job-1', agentId: 'agent-1', command: ['/usr/bin/node', '/data/runtime/job-x/src/job/entry.ts'], env: {}, workdir: '/data/jobs/job-1', shared: ['/usr/bin/node', '/data/runtime/job-x'] };

test('a job container has a process limit, no capabilities, and no new privileges', () => {
  const options = containerOptions(spec, '/data/jobs/job-1', spec.shared.map((file) => ({ hostPath: file, containerPath: file })), settings);
  assert.equal(options.HostConfig?.PidsLimit, 4096);
  assert.deepEqual(options.HostConfig?.CapDrop, ['ALL']);
  assert.deepEqual(options.HostConfig?.SecurityOpt, ['no-new-privileges']);
});

test('only the job directory is writable; shared files are bound read-only', () => {
  const options = containerOptions(spec, '/data/jobs/job-1', spec.shared.map((file) => ({ hostPath: file, containerPath: file })), settings);
  const [workdir, ...shared] = options.HostConfig?.Binds ?? [];
  assert.equal(workdir, '/data/jobs/job-1:/outpost/job:rw');
  assert.deepEqual(shared, ['/usr/bin/node:/outpost/shared/0-node:ro', '/data/runtime/job-x:/outpost/shared/1-job-x:ro']);
});
