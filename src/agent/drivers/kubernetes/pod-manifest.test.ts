// The job pod the driver and the controller ask for: what they add to the
// operator's template, and what they never put in a pod spec.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { gateFile, jobPod, jobPodName, podLabels } from './pod-manifest.ts';
import { jobContainerState } from './pod-status.ts';

const request = {
  jobId: 'job-AbCdEf',
  runId: 'run-1',
  phase: 'plan',
  agentId: 'agent-1',
  instance: 'outpost',
  workdir: '/var/lib/outpost-agent/jobs/job-AbCdEf',
  readOnlyPaths: ['/var/lib/outpost-agent/runtime', '/var/cache/outpost-agent', '/var/cache/outpost-agent/binaries'],
  env: { OUTPOST_JOB_SERVER_URL: 'https://outpost.example.com', OUTPOST_JOB_TOKEN: 'opj_secret' },
  secretName: 'outpost-job-abcdef-token',
  leaseId: 'lease-1',
  defaultImage: 'outpost/agent:1',
  defaultUser: { uid: 1000, gid: 1000 },
};

test('pod names are valid and distinct for ids that differ only in case', () => {
  const upper = jobPodName('job-ABC');
  const lower = jobPodName('job-abc');
  assert.notEqual(upper, lower);
  for (const name of [upper, lower, jobPodName(`job-${'x'.repeat(80)}`)]) assert.match(name, /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
});

test('the template keeps its placement and security; the job container gets the command, the node directories and the labels', () => {
  const template: V1Pod = {
    metadata: { labels: { team: 'infra' }, annotations: { 'karpenter.sh/do-not-disrupt': 'true' } },
    spec: {
      nodeSelector: { pool: 'runs' },
      tolerations: [{ key: 'runs', operator: 'Exists' }],
      securityContext: { runAsUser: 2000, fsGroup: 2000 },
      containers: [{ name: 'sidecar', image: 'proxy:1' }, { name: 'job', image: 'runner:2', resources: { limits: { memory: '1Gi' } } }],
    },
  };
  const pod = jobPod(template, { ...request, command: ['node', 'op.mjs'] });
  assert.equal(pod.metadata?.labels?.team, 'infra');
  assert.equal(pod.metadata?.labels?.[podLabels.jobId], 'job-AbCdEf');
  assert.equal(pod.metadata?.labels?.[podLabels.instance], 'outpost');
  assert.equal(pod.metadata?.annotations?.['outpost.dev/lease-id'], 'lease-1');
  assert.equal(pod.spec?.nodeSelector?.pool, 'runs');
  assert.equal(pod.spec?.restartPolicy, 'Never');
  assert.equal(pod.spec?.automountServiceAccountToken, false);
  assert.equal(pod.spec?.securityContext?.runAsUser, 2000, 'the template\'s user wins');
  const job = pod.spec?.containers.find((container) => container.name === 'job');
  assert.equal(job?.image, 'runner:2');
  assert.equal(job?.resources?.limits?.memory, '1Gi');
  assert.deepEqual(job?.command, ['sh', '-c', 'exec "$@" 2>&1', 'outpost-job', 'node', 'op.mjs']);
  assert.deepEqual(job?.securityContext?.capabilities?.drop, ['ALL']);
  assert.equal(pod.spec?.containers[0]?.name, 'sidecar', 'sidecars stay');
  // The job directory read-write, the shared ones read-only, a directory inside another mounted once.
  const mounts = job?.volumeMounts?.map((mount) => `${mount.mountPath}:${mount.readOnly ? 'ro' : 'rw'}`);
  assert.deepEqual(mounts, [`${request.workdir}:rw`, '/var/cache/outpost-agent:ro', '/var/lib/outpost-agent/runtime:ro']);
  assert.ok(pod.spec?.volumes?.every((volume) => volume.hostPath?.path !== undefined));
});

test('the job token reaches the pod through its secret, never as a value in the spec', () => {
  const pod = jobPod({ spec: { containers: [] } }, request);
  const text = JSON.stringify(pod);
  assert.doesNotMatch(text, /opj_secret/);
  const token = pod.spec?.containers[0]?.env?.find((entry) => entry.name === 'OUTPOST_JOB_TOKEN');
  assert.deepEqual(token?.valueFrom?.secretKeyRef, { name: request.secretName, key: 'OUTPOST_JOB_TOKEN' });
  assert.equal(pod.spec?.containers[0]?.image, 'outpost/agent:1', 'the default image when the template has no job container');
});

test('a gated pod waits for its gate file, which sets the environment and the command; quoting survives any value', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-gate-'));
  const gate = path.join(dir, 'gate.sh');
  const tricky = `it's "quoted" $HOME \`whoami\` \\ end`;
  await writeFile(gate, gateFile({ VALUE: tricky, OUTPOST_JOB_TOKEN: 'never-written' }, ['sh', '-c', 'printf "%s|%s" "$VALUE" "$1"', 'arg0', tricky]));
  assert.doesNotMatch(await readFile(gate, 'utf8'), /never-written/);
  const pod = jobPod({ spec: { containers: [] } }, { ...request, workdir: dir });
  const [shell, flag, script, name] = pod.spec!.containers[0]!.command!;
  const output = execFileSync(shell!, [flag!, script!, name!], { env: { PATH: process.env.PATH, OUTPOST_GATE_FILE: gate }, encoding: 'utf8', timeout: 10_000 });
  assert.equal(output, `${tricky}|${tricky}`);
});

test('a gate nobody opens ends the container after OUTPOST_GATE_TIMEOUT seconds, saying why', () => {
  const pod = jobPod({ spec: { containers: [] } }, request);
  const [shell, flag, script, name] = pod.spec!.containers[0]!.command!;
  const result = spawnSync(shell!, [flag!, script!, name!], { env: { PATH: process.env.PATH, OUTPOST_GATE_FILE: '/nonexistent/gate.sh', OUTPOST_GATE_TIMEOUT: '1' }, encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 125);
  assert.match(result.stderr, /no agent started this job within 1 s; giving up/);
});

test('container states: running, ended (with signal and OOM), stuck on an image, pending unscheduled', () => {
  const pod = (status: V1Pod['status']): V1Pod => ({ status });
  assert.deepEqual(jobContainerState(pod({ containerStatuses: [{ name: 'job', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] })), { state: 'running' });
  assert.deepEqual(jobContainerState(pod({ containerStatuses: [{ name: 'job', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] })), {
    state: 'terminated',
    exit: { code: null, signal: 'SIGKILL', oomKilled: true },
  });
  assert.deepEqual(jobContainerState(pod({ containerStatuses: [{ name: 'job', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 2 } } }] })).state, 'terminated');
  assert.match(JSON.stringify(jobContainerState(pod({ containerStatuses: [{ name: 'job', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'no such image' } } }] }))), /stuck.*ImagePullBackOff: no such image/);
  assert.deepEqual(jobContainerState(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' }] })), {
    state: 'pending',
    reason: 'Unschedulable: 0/1 nodes are available',
  });
});
