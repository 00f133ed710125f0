// The parts of TFE's API its clients rely on before and around runs:
// discovery, headers and media type, entitlements, pre-signed upload and log
// URLs (with TFE's log framing), speculative and auto-queuing configuration
// versions, run options and filters, workspace tags, search and pagination.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { agentPaths } from '../protocol/agent-api.ts';
import { claimAndStart, queueRun, setupWorkspace, startInProcessServer, type InProcessServer, type Response } from './in-process-server.test-support.ts';
import { insertChunk } from './logs/repo.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(async () => {
  await server.close();
});

const gzip = Buffer.from([0x1f, 0x8b, 0, 0]);
const pathOf = (url: string) => new URL(url).pathname;

function expectError(response: Response, status: number, code: string): void {
  assert.equal(response.status, status, response.text);
  assert.equal((response.json as { errors: { code: string }[] }).errors[0]?.code, code, response.text);
}

async function newConfigurationVersion(workspaceId: string, attributes: Record<string, unknown> = {}) {
  const created = await server.request('POST', `/api/v2/workspaces/${workspaceId}/configuration-versions`, { json: { data: { type: 'configuration-versions', attributes } } });
  assert.equal(created.status, 201, created.text);
  return created.json.data as { id: string; attributes: Record<string, unknown> & { 'upload-url': string } };
}

test('discovery names the API for the tofu CLI, and /api/v2 answers carry TFE\'s headers and media type', async () => {
  const discovery = await server.request('GET', '/.well-known/terraform.json');
  assert.deepEqual(discovery.json, { 'tfe.v2': '/api/v2/', 'tfe.v2.1': '/api/v2/', 'tfe.v2.2': '/api/v2/' });
  const ping = await server.app.inject({ method: 'GET', url: '/api/v2/ping' });
  assert.equal(ping.statusCode, 204);
  assert.equal(ping.headers['tfp-api-version'], '2.6');
  assert.equal(ping.headers['tfp-appname'], 'Outpost');
  const org = await server.app.inject({ method: 'GET', url: '/api/v2/organizations/default', headers: { authorization: `Bearer ${server.adminToken}` } });
  assert.equal(org.headers['content-type'], 'application/vnd.api+json');
  const refused = await server.app.inject({ method: 'GET', url: '/api/v2/organizations/default' });
  assert.equal(refused.statusCode, 401);
  assert.equal(refused.headers['content-type'], 'application/vnd.api+json');
});

test('the entitlement set enables remote operations and state; the account is the token', async () => {
  const entitlements = await server.request('GET', '/api/v2/organizations/default/entitlement-set');
  assert.equal(entitlements.json.data.type, 'entitlement-sets');
  assert.equal(entitlements.json.data.attributes.operations, true);
  assert.equal(entitlements.json.data.attributes['state-storage'], true);
  assert.equal(entitlements.json.data.attributes.sentinel, false);
  expectError(await server.request('GET', '/api/v2/organizations/elsewhere/entitlement-set'), 404, 'not_found');
  const account = await server.request('GET', '/api/v2/account/details');
  assert.equal(account.json.data.type, 'users');
  expectError(await server.request('GET', '/api/v2/account/details', { token: 'opa_unknownunknownunknownunknown00' }), 401, 'token_invalid');
});

test('an upload-url is pre-signed: it takes the archive without a token, once, for its own version only', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const first = await newConfigurationVersion(workspaceId);
  const second = await newConfigurationVersion(workspaceId);
  const upload = pathOf(first.attributes['upload-url']);
  assert.match(upload, /^\/_signed\/[^/]+\/configuration-versions\/cv-[^/]+\/upload$/);
  // The first version's signature does not open the second one.
  const forged = upload.replace(first.id, second.id);
  expectError(await server.request('PUT', forged, { authorization: '', body: gzip }), 403, 'url_signature_invalid');
  // Nor another method.
  expectError(await server.request('GET', upload, { authorization: '' }), 404, 'route_not_found');
  const stored = await server.request('PUT', upload, { authorization: '', body: gzip });
  assert.equal(stored.status, 200, stored.text);
  expectError(await server.request('PUT', upload, { authorization: '', body: gzip }), 409, 'conflict');
  const read = await server.request('GET', `/api/v2/configuration-versions/${first.id}`);
  assert.equal(read.json.data.attributes.status, 'uploaded');
  const download = await server.request('GET', `/api/v2/configuration-versions/${first.id}/download`);
  assert.deepEqual(download.body, gzip);
});

test('runs of a speculative configuration version only plan and never hold the workspace', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const cv = await newConfigurationVersion(workspaceId, { speculative: true });
  assert.equal(cv.attributes.speculative, true);
  assert.equal((await server.request('PUT', pathOf(cv.attributes['upload-url']), { authorization: '', body: gzip })).status, 200);
  const relationships = { workspace: { data: { type: 'workspaces', id: workspaceId } }, 'configuration-version': { data: { type: 'configuration-versions', id: cv.id } } };
  const run = await server.request('POST', '/api/v2/runs', { json: { data: { type: 'runs', attributes: { 'auto-apply': true }, relationships } } });
  assert.equal(run.status, 201, run.text);
  assert.equal(run.json.data.attributes['plan-only'], true);
  assert.equal(run.json.data.attributes['auto-apply'], false);
  assert.equal(run.json.data.attributes.source, 'tfe-api');
  const workspace = await server.request('GET', `/api/v2/workspaces/${workspaceId}`);
  assert.equal(workspace.json.data.relationships['current-run'].data, null);
});

test('an auto-queuing configuration version queues its run when uploaded; the tofu CLI\'s runs say where they came from', async () => {
  const { workspaceId } = await setupWorkspace(server);
  const cv = await server.app.inject({
    method: 'POST',
    url: `/api/v2/workspaces/${workspaceId}/configuration-versions`,
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/vnd.api+json', 'x-terraform-integration': 'cloud' },
    payload: JSON.stringify({ data: { type: 'configuration-versions', attributes: { 'auto-queue-runs': true } } }),
  });
  const created = cv.json() as { data: { id: string; attributes: { source: string; 'upload-url': string } } };
  assert.equal(created.data.attributes.source, 'terraform+cloud');
  assert.equal((await server.request('PUT', pathOf(created.data.attributes['upload-url']), { authorization: '', body: gzip })).status, 200);
  const runs = await server.request('GET', `/api/v2/workspaces/${workspaceId}/runs`);
  assert.equal(runs.json.data.length, 1);
  assert.equal(runs.json.data[0].attributes.source, 'tfe-configuration-version');
  assert.equal(runs.json.meta.pagination['total-count'], 1);
});

test('run options reach the job; filters, include and run events answer as go-tfe reads them', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId, {
    refresh: false,
    'target-addrs': ['terraform_data.a'],
    'replace-addrs': ['terraform_data.b'],
    variables: [{ key: 'region', value: '"eu-west-1"' }],
  });
  const read = await server.request('GET', `/api/v2/runs/${runId}?include=workspace,plan,task_stages`);
  assert.equal(read.json.data.attributes.refresh, false);
  assert.deepEqual(read.json.data.attributes['target-addrs'], ['terraform_data.a']);
  assert.equal(read.json.data.attributes.actions['is-cancelable'], true);
  assert.equal(read.json.data.attributes.permissions['can-apply'], true);
  assert.deepEqual(read.json.included.map((item: { type: string }) => item.type).sort(), ['plans', 'workspaces']);
  expectError(await server.request('GET', `/api/v2/runs/${runId}?include=secrets`), 400, 'invalid_request');
  expectError(await server.request('POST', '/api/v2/runs', { json: { data: { type: 'runs', attributes: { 'target-addrs': ['-lock=false'] }, relationships: { workspace: { data: { type: 'workspaces', id: workspaceId } } } } } }), 422, 'validation_failed');
  const savePlan = await server.request('POST', '/api/v2/runs', { json: { data: { type: 'runs', attributes: { 'save-plan': true }, relationships: { workspace: { data: { type: 'workspaces', id: workspaceId } } } } } });
  expectError(savePlan, 422, 'validation_failed');
  assert.match(savePlan.text, /saved plans/);

  const job = await claimAndStart(server, session);
  const spec = await server.request('GET', agentPaths.jobSpec, { token: job.job_token });
  assert.deepEqual(spec.json.plan_options, { refresh: false, refresh_only: false, targets: ['terraform_data.a'], replace: ['terraform_data.b'] });
  assert.deepEqual(spec.json.variables.find((variable: { key: string }) => variable.key === 'region'), { key: 'region', value: '"eu-west-1"', category: 'terraform', hcl: true, sensitive: true });
  // The run variable is sealed at rest.
  const stored = await server.ctx.db.selectFrom('runs').select('plan_options').where('id', '=', runId).executeTakeFirstOrThrow();
  assert.doesNotMatch(stored.plan_options ?? '', /eu-west-1/);

  const planning = await server.request('GET', `/api/v2/workspaces/${workspaceId}/runs?filter[status]=planning`);
  assert.deepEqual(planning.json.data.map((run: { id: string }) => run.id), [runId]);
  const applied = await server.request('GET', `/api/v2/workspaces/${workspaceId}/runs?filter[status]=applied`);
  assert.equal(applied.json.data.length, 0);
  expectError(await server.request('GET', `/api/v2/workspaces/${workspaceId}/runs?filter[status]=sleeping`), 422, 'validation_failed');
  const events = await server.request('GET', `/api/v2/runs/${runId}/run-events`);
  assert.deepEqual(events.json.data.map((event: { attributes: { action: string } }) => event.attributes.action), ['pending', 'plan-queued', 'planning']);
  const queue = await server.request('GET', '/api/v2/organizations/default/runs/queue');
  assert.ok(queue.json.data.some((run: { id: string }) => run.id === runId));
  const capacity = await server.request('GET', '/api/v2/organizations/default/capacity');
  assert.equal(capacity.json.data.type, 'organization-capacity');
  assert.ok(capacity.json.data.attributes.running >= 1);
});

test('a log-read-url is pre-signed and framed: STX first, ETX once the phase is over, offsets counting both', async () => {
  const { workspaceId, session } = await setupWorkspace(server);
  const runId = await queueRun(server, workspaceId);
  const job = await claimAndStart(server, session);
  await insertChunk(server.ctx.db, runId, 'plan', 0, Buffer.from('hello '));
  const plan = await server.request('GET', `/api/v2/plans/${runId.replace('run-', 'plan-')}`);
  const logUrl = pathOf(plan.json.data.attributes['log-read-url'] as string);
  const read = async (offset: number, limit: number) => (await server.request('GET', `${logUrl}?offset=${offset}&limit=${limit}`, { authorization: '' })).body;
  assert.deepEqual(await read(0, 100), Buffer.from('\x02hello '));
  await insertChunk(server.ctx.db, runId, 'plan', 6, Buffer.from('world'));
  assert.deepEqual(await read(7, 100), Buffer.from('world'));
  assert.equal((await server.request('POST', agentPaths.jobResult, { token: job.job_token, json: { outcome: 'succeeded', has_changes: false } })).status, 204);
  assert.equal((await server.request('POST', agentPaths.jobFinish(job.job_id), { token: session, json: { lease_id: job.lease_id, status: 'succeeded' } })).status, 204);
  assert.deepEqual(await read(7, 100), Buffer.from('world\x03'));
  // A limit that stops short of the end leaves ETX for the next read.
  assert.deepEqual(await read(7, 5), Buffer.from('world'));
  assert.deepEqual(await read(12, 5), Buffer.from('\x03'));
  // The apply of a run that never applies is an empty, closed log.
  const apply = await server.request('GET', `/api/v2/applies/${runId.replace('run-', 'apply-')}`);
  const applyLog = await server.request('GET', `${pathOf(apply.json.data.attributes['log-read-url'] as string)}?offset=0&limit=10`, { authorization: '' });
  assert.deepEqual(applyLog.body, Buffer.from('\x02\x03'));
  // Another phase's URL is refused without saying whether it exists.
  expectError(await server.request('GET', logUrl.replace('/plans/', '/applies/').replace('plan-', 'apply-'), { authorization: '' }), 403, 'url_signature_invalid');
});

test('workspaces: tags, search, pagination, execution mode and update by name', async () => {
  const tagged = await server.request('POST', '/api/v2/organizations/default/workspaces', {
    json: { data: { type: 'workspaces', attributes: { name: 'tagged-a', 'tag-names': ['net', 'prod'], 'execution-mode': 'local' } } },
  });
  assert.equal(tagged.status, 201, tagged.text);
  assert.deepEqual(tagged.json.data.attributes['tag-names'], ['net', 'prod']);
  assert.equal(tagged.json.data.attributes.permissions['can-queue-run'], true);
  // go-tfe sends tags as a relationship.
  const related = await server.request('POST', '/api/v2/organizations/default/workspaces', {
    json: { data: { type: 'workspaces', attributes: { name: 'tagged-b' }, relationships: { tags: { data: [{ type: 'tags', attributes: { name: 'net' } }] } } } },
  });
  assert.deepEqual(related.json.data.attributes['tag-names'], ['net']);
  const both = await server.request('GET', '/api/v2/organizations/default/workspaces?search[tags]=net,prod');
  assert.deepEqual(both.json.data.map((w: { attributes: { name: string } }) => w.attributes.name), ['tagged-a']);
  const net = await server.request('GET', '/api/v2/organizations/default/workspaces?search[tags]=net&search[exclude-tags]=prod');
  assert.deepEqual(net.json.data.map((w: { attributes: { name: string } }) => w.attributes.name), ['tagged-b']);
  const paged = await server.request('GET', '/api/v2/organizations/default/workspaces?search[name]=tagged&page[size]=1&page[number]=2');
  assert.equal(paged.json.data.length, 1);
  assert.deepEqual(paged.json.meta.pagination, { 'current-page': 2, 'page-size': 1, 'prev-page': 1, 'next-page': null, 'total-pages': 2, 'total-count': 2 });
  assert.match(paged.json.links.first, /page%5Bnumber%5D=1/);
  expectError(await server.request('GET', '/api/v2/organizations/default/workspaces?page[size]=1000'), 422, 'validation_failed');
  expectError(await server.request('POST', '/api/v2/organizations/default/workspaces', { json: { data: { type: 'workspaces', attributes: { name: 'bad-tag', 'tag-names': ['no spaces'] } } } }), 422, 'validation_failed');

  const renamed = await server.request('PATCH', '/api/v2/organizations/default/workspaces/tagged-b', { json: { data: { type: 'workspaces', attributes: { 'auto-apply': true } } } });
  assert.equal(renamed.json.data.attributes['auto-apply'], true);
  assert.equal((await server.request('POST', `/api/v2/workspaces/${related.json.data.id}/relationships/tags`, { json: { data: [{ type: 'tags', attributes: { name: 'dev' } }] } })).status, 204);
  const tags = await server.request('GET', `/api/v2/workspaces/${related.json.data.id}/relationships/tags`);
  assert.deepEqual(tags.json.data.map((tag: { attributes: { name: string } }) => tag.attributes.name), ['dev', 'net']);

  // A workspace in local mode runs in the CLI: it refuses runs.
  const cv = await newConfigurationVersion(tagged.json.data.id);
  await server.request('PUT', pathOf(cv.attributes['upload-url']), { authorization: '', body: gzip });
  const relationships = { workspace: { data: { type: 'workspaces', id: tagged.json.data.id } }, 'configuration-version': { data: { type: 'configuration-versions', id: cv.id } } };
  expectError(await server.request('POST', '/api/v2/runs', { json: { data: { type: 'runs', attributes: {}, relationships } } }), 409, 'conflict');
  assert.equal((await server.request('DELETE', '/api/v2/organizations/default/workspaces/tagged-b')).status, 204);
  expectError(await server.request('GET', '/api/v2/organizations/default/workspaces/tagged-b'), 404, 'not_found');
});
