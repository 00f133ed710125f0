// Which waiting states of a job pod fail the job at once and which are
// waited out: a kubelet whose secret cache has not caught up yet retries by
// itself, a missing image does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { jobContainerState } from './pod-status.ts';
import { jobContainerName } from './pod-manifest.ts';

function waitingPod(reason: string, message: string): V1Pod {
  return { status: { phase: 'Pending', containerStatuses: [{ name: jobContainerName, image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } }] } };
}

test('a secret the kubelet has not synced yet is waited out; a secret that is missing or an image that cannot be pulled is not', () => {
  assert.equal(jobContainerState(waitingPod('CreateContainerConfigError', 'failed to sync secret cache: timed out waiting for the condition')).state, 'pending');
  assert.equal(jobContainerState(waitingPod('CreateContainerConfigError', 'failed to sync configmap cache: timed out waiting for the condition')).state, 'pending');
  assert.deepEqual(jobContainerState(waitingPod('CreateContainerConfigError', 'secret "job-token" not found')), { state: 'stuck', reason: 'CreateContainerConfigError: secret "job-token" not found' });
  assert.equal(jobContainerState(waitingPod('ImagePullBackOff', 'Back-off pulling image')).state, 'stuck');
  assert.equal(jobContainerState(waitingPod('ContainerCreating', '')).state, 'pending');
});
