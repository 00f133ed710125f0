// node:test's test()/it()/describe() return promises the runner tracks itself;
// until eslint.config.js allows them project-wide, say so here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { agentPaths } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { ControlPlaneTransport } from './control-plane-transport.ts';
import { startFakeControlPlane, type FakeControlPlane } from './fake-control-plane.test-support.ts';
import { JobApi } from './job-api.ts';

const fast = { budgetMs: 200, firstDelayMs: 5, maxDelayMs: 20 };
const spec = {
  job_id: 'j', run_id: 'r', kind: 'plan' as const, is_destroy: false, plan_only: false,
  workspace: { id: 'w', name: 'w', working_directory: '' }, engine: { name: 'opentofu' as const, version: '1.10.10' }, variables: [],
};

describe('JobApi over the transport', () => {
  let plane: FakeControlPlane;
  before(async () => {
    plane = await startFakeControlPlane('token-1');
    plane.spec = spec;
  });
  after(() => plane.close());

  const api = (token = 'token-1', retries: string[] = []): JobApi =>
    new JobApi(new ControlPlaneTransport({ baseUrl: plane.url, token, retry: fast, onRetry: (message) => retries.push(message) }));

  it('retries 503 until the control plane answers, saying so once when it fails and once when it answers again', async () => {
    plane.unavailable.set(agentPaths.jobSpec, 3);
    const retries: string[] = [];
    assert.equal((await api('token-1', retries).fetchSpec()).job_id, 'j');
    assert.equal(retries.length, 2, retries.join('\n'));
    assert.match(retries[0] ?? '', /answered 503; retrying with backoff for up to 200ms/);
    assert.match(retries[1] ?? '', /answers again after/);
  });

  it('gives up once its time budget is spent, with the server\'s code', async () => {
    plane.unavailable.set(agentPaths.jobSpec, 1_000);
    await assert.rejects(api().fetchSpec(), (error: unknown) => error instanceof OutpostError && error.code === 'unavailable');
    plane.unavailable.clear();
  });

  it('does not retry a 4xx and keeps its code', async () => {
    const before = plane.requests.length;
    await assert.rejects(api('wrong-token').fetchSpec(), (error: unknown) => error instanceof OutpostError && error.code === 'token_invalid');
    assert.equal(plane.requests.length - before, 1);
  });

  it('reports a control plane it cannot reach as unavailable', async () => {
    const nowhere = new JobApi(new ControlPlaneTransport({ baseUrl: 'http://127.0.0.1:9', token: 't', retry: fast }));
    await assert.rejects(nowhere.fetchSpec(), (error: unknown) => error instanceof OutpostError && error.code === 'unavailable' && /cannot reach/.test(error.message));
  });
});
