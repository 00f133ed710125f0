import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { loadAgentConfig } from './config.ts';
import { cgroupLimitFiles, cgroupMemoryLimit, jobMemoryLimit, parseCgroupLimit } from './memory-limit.ts';

const mib = 1024 * 1024;
const host = 16 * 1024 * mib;

test('cgroup limit values: bytes, or none for max, the v1 unlimited value and anything the host does not have', () => {
  assert.equal(parseCgroupLimit('536870912\n', host), 512 * mib);
  assert.equal(parseCgroupLimit('max\n', host), undefined);
  assert.equal(parseCgroupLimit('9223372036854771712\n', host), undefined);
  assert.equal(parseCgroupLimit(String(host), host), undefined);
  assert.equal(parseCgroupLimit('', host), undefined);
});

test('limit files: the own cgroup and its ancestors, v2 and v1 layouts', () => {
  assert.deepEqual(cgroupLimitFiles('0::/system.slice/outpost.service\n'), [
    '/sys/fs/cgroup/system.slice/outpost.service/memory.max',
    '/sys/fs/cgroup/system.slice/memory.max',
    '/sys/fs/cgroup/memory.max',
  ]);
  assert.deepEqual(cgroupLimitFiles('5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n'), [
    '/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes',
    '/sys/fs/cgroup/memory/docker/memory.limit_in_bytes',
    '/sys/fs/cgroup/memory/memory.limit_in_bytes',
    '/sys/fs/cgroup/memory.max',
  ]);
  assert.deepEqual(cgroupLimitFiles(''), ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']);
});

test('the tightest limit that applies wins; unreadable and unlimited files are skipped', () => {
  const files: Record<string, string> = {
    '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    '/sys/fs/cgroup/kubepods/pod1/ctr/memory.max': 'max\n',
    '/sys/fs/cgroup/kubepods/pod1/memory.max': `${1024 * mib}\n`,
    '/sys/fs/cgroup/kubepods/memory.max': `${2048 * mib}\n`,
  };
  assert.equal(cgroupMemoryLimit((file) => files[file], host), 1024 * mib);
  assert.equal(cgroupMemoryLimit(() => undefined, host), undefined);
  // A container's namespace: /proc/self/cgroup says `/`, the root file is the container's.
  assert.equal(cgroupMemoryLimit((file) => ({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/memory.max': '268435456\n' })[file], host), 256 * mib);
});

test('the per-job limit: configured, else the docker container limit, else the cgroup share per concurrent job, else off', () => {
  const logger = pino({ level: 'silent' });
  const base = { OUTPOST_AGENT_TOKEN: 'x' };
  const none = () => undefined;
  assert.deepEqual(jobMemoryLimit(loadAgentConfig({ ...base, OUTPOST_AGENT_MEMORY_LIMIT_MB: '200' }), 'local', logger, none), {
    bytes: 200 * mib,
    source: 'OUTPOST_AGENT_MEMORY_LIMIT_MB',
  });
  assert.equal(jobMemoryLimit(loadAgentConfig({ ...base, OUTPOST_AGENT_CONTAINER_TASK_MEM_LIMIT: '2048' }), 'docker', logger, none)?.bytes, 2048 * mib);
  const shared = jobMemoryLimit(loadAgentConfig({ ...base, OUTPOST_AGENT_CONCURRENCY: '4' }), 'local', logger, () => 4096 * mib);
  assert.equal(shared?.bytes, 1024 * mib);
  assert.match(shared!.source, /cgroup limit of 4096 MiB shared by 4/);
  assert.equal(jobMemoryLimit(loadAgentConfig(base), 'local', logger, none), undefined);
  assert.equal(jobMemoryLimit(loadAgentConfig({ ...base, SCALR_AGENT_MEMORY_MONITOR_ENABLED: 'false', OUTPOST_AGENT_MEMORY_LIMIT_MB: '200' }), 'local', logger, none), undefined);
});

test('memory guard settings: defaults, the Scalr agent\'s names, and their ranges', () => {
  const config = loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x' });
  assert.deepEqual(
    [config.memoryMonitorEnabled, config.memoryMonitorSoftLimitPercent, config.memoryMonitorWarnPercent, config.memoryMonitorInterval, config.memoryLimitMb],
    [true, 80, 90, 2000, undefined],
  );
  const scalr = loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x', SCALR_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT: '70', SCALR_AGENT_MEMORY_MONITOR_WARN_PERCENT: '95' });
  assert.equal(scalr.memoryMonitorSoftLimitPercent, 70);
  assert.equal(scalr.memoryMonitorWarnPercent, 95);
  assert.throws(() => loadAgentConfig({ OUTPOST_AGENT_TOKEN: 'x', OUTPOST_AGENT_MEMORY_MONITOR_SOFT_LIMIT_PERCENT: '120' }));
});
