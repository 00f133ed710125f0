// Bad input on the user API (/api/v2) of the real server, on every database
// backend: unknown ids, unknown paths, malformed and oversized bodies,
// duplicates, actions in the wrong state, oversized and non-gzip uploads.
// Every refusal must be the one error document with the status AND the stable
// code of the catalogue, name what was wrong, and change nothing: nothing is
// created, a configuration version a refused upload was meant for stays
// `pending` with nothing stored.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { ServerHandle } from '../support/cluster.ts';
import { startServer } from '../support/cluster.ts';
import { databaseBackends } from '../support/postgres.ts';
import { logTail } from '../support/spawned-process.ts';
import { createPool, packFiles, type Pool, type Resource, type Run, type Workspace } from '../support/api-calls.ts';
import { suiteHooks } from '../support/test-cluster.ts';
import { assertError, findNamesContaining, HttpRecorder, sendEarlyAnswered } from '../support/security-checks.ts';

const MiB = 1024 * 1024;

interface ConfigurationVersionAttributes {
  status: string;
  size: number | null;
  'upload-url': string | null;
}

for (const backend of databaseBackends()) {
  describe(`bad input on the user API (${backend})`, () => {
    const hooks = suiteHooks();
    let server: ServerHandle;
    let http: HttpRecorder;
    let pool: Pool;
    const serverLog = () => `--- server log (${backend})\n${logTail(server.logFile, 40)}`;

    const newWorkspace = async (name = `ws-${randomBytes(4).toString('hex')}`): Promise<Workspace> =>
      (
        await http.expect<{ data: Workspace }>('POST', '/api/v2/organizations/default/workspaces', 201, {
          json: { data: { type: 'workspaces', attributes: { name, 'agent-pool-id': pool.id } } },
        })
      ).data;

    const newConfigurationVersion = async (workspaceId: string): Promise<Resource<ConfigurationVersionAttributes>> =>
      (
        await http.expect<{ data: Resource<ConfigurationVersionAttributes> }>(
          'POST',
          `/api/v2/workspaces/${workspaceId}/configuration-versions`,
          201,
          { json: { data: { type: 'configuration-versions', attributes: {} } } },
        )
      ).data;

    const runBody = (workspaceId: string, cvId: string) => ({
      data: {
        type: 'runs',
        attributes: { message: 'bad input e2e' },
        relationships: {
          workspace: { data: { type: 'workspaces', id: workspaceId } },
          'configuration-version': { data: { type: 'configuration-versions', id: cvId } },
        },
      },
    });

    before(async () => {
      // One server for the suite; the 1 MiB upload limit only matters to the upload test.
      server = await startServer({ backend, t: hooks, env: { OUTPOST_MAX_UPLOAD_MB: '1' } });
      http = new HttpRecorder(server.url, server.adminToken);
      // A pool without agents: runs stay queued, which is what these tests want.
      pool = await createPool(server);
    });

    test('unknown ids are 404 not_found; unknown endpoints are 404 route_not_found', async () => {
      const workspace = await newWorkspace();
      const unknownIds: [string, string, unknown?][] = [
        ['GET', '/api/v2/runs/run-doesnotexist'],
        ['GET', '/api/v2/workspaces/ws-x'],
        ['GET', '/api/v2/agent-pools/apool-x'],
        ['GET', '/api/v2/state-versions/sv-x'],
        ['GET', '/api/v2/state-versions/sv-x/download'],
        ['GET', '/api/v2/state-versions/sv-x/outputs'],
        ['GET', '/api/v2/plans/plan-x'],
        ['GET', '/api/v2/plans/plan-x/logs'],
        ['GET', '/api/v2/plans/apply-x'],
        ['GET', '/api/v2/applies/apply-x'],
        ['GET', '/api/v2/configuration-versions/cv-x'],
        ['GET', '/api/v2/agents/agent-x'],
        ['GET', '/api/v2/agent-pools/apool-x/agents'],
        ['GET', '/api/v2/workspaces/ws-x/vars'],
        ['GET', '/api/v2/workspaces/ws-x/runs'],
        ['GET', '/api/v2/workspaces/ws-x/current-state-version'],
        ['GET', `/api/v2/workspaces/${workspace.id}/current-state-version`], // exists, but has no state yet
        ['GET', '/api/v2/organizations/no-such-org'],
        ['GET', '/api/v2/organizations/default/workspaces/no-such-workspace'],
        ['POST', '/api/v2/runs/run-x/actions/apply'],
        ['POST', '/api/v2/runs/run-x/actions/discard'],
        ['POST', '/api/v2/runs/run-x/actions/cancel'],
        ['DELETE', '/api/v2/authentication-tokens/at-x'],
        ['DELETE', `/api/v2/workspaces/${workspace.id}/vars/var-x`],
        ['POST', '/api/v2/workspaces/ws-x/configuration-versions', { data: { type: 'configuration-versions' } }],
        ['POST', '/api/v2/runs', runBody('ws-x', 'cv-x')],
        ['POST', '/api/v2/runs', runBody(workspace.id, 'cv-x')],
      ];
      for (const [method, path, json] of unknownIds) {
        const response = await http.request(method, path, json === undefined ? {} : { json });
        assertError(response, 404, 'not_found', { detail: /not found|no state/, context: serverLog });
      }

      const unknownEndpoints: [string, string][] = [
        ['GET', '/api/v2/no-such-endpoint'],
        ['GET', '/api/v3/organizations'],
        ['GET', '/'],
        ['DELETE', '/api/v2/runs/run-x'],
        ['PUT', '/api/v2/organizations'],
        ['GET', '/api/agent/v1/no-such-endpoint'],
        ['POST', '/api/agent/v2/register'],
      ];
      for (const [method, path] of unknownEndpoints) {
        const response = await http.request(method, path);
        assertError(response, 404, 'route_not_found', { detail: `${method} ${path} is not an endpoint`, context: serverLog });
      }
      // Without a token too: an unknown endpoint is unknown to everybody.
      assertError(await http.get('/api/v2/no-such-endpoint', { token: null }), 404, 'route_not_found');
    });

    test('a malformed URL is 400 invalid_request in the error document', async () => {
      const malformed = [
        '/api/v2/workspaces/%00', // a NUL: no id has one, and PostgreSQL cannot even compare it
        '/api/v2/organizations/default/workspaces/ws%00x',
        '/api/v2/plans/plan-x/logs?offset=0&x=%00',
        '/api/v2/runs/run-%ZZ', // not percent-decodable
        `/api/v2/workspaces/ws-${'x'.repeat(300)}`, // longer than any id
      ];
      for (const urlPath of malformed) {
        assertError(await http.get(urlPath), 400, 'invalid_request', { context: serverLog });
      }
      assertError(await http.request('POST', '/api/agent/v1/jobs/job-%00/start', { json: { lease_id: 'x' } }), 400, 'invalid_request');
    });

    test('a body that is not JSON is 400 invalid_request; one of a type the API does not read is 415 unsupported_media_type', async () => {
      const workspace = await newWorkspace();
      const targets: [string, string][] = [
        ['POST', '/api/v2/organizations/default/agent-pools'],
        ['POST', '/api/v2/organizations/default/workspaces'],
        ['PATCH', `/api/v2/workspaces/${workspace.id}`],
        ['POST', `/api/v2/workspaces/${workspace.id}/vars`],
        ['POST', '/api/v2/runs'],
      ];
      for (const [method, path] of targets) {
        for (const text of ['{"data": {"type": "workspaces"', 'not json at all', '']) {
          for (const contentType of ['application/vnd.api+json', 'application/json']) {
            const response = await http.request(method, path, { text, contentType });
            assertError(response, 400, 'invalid_request', { detail: 'not valid JSON', context: serverLog });
          }
        }
      }
      // A body in a type the API does not read.
      const form = await http.request('POST', '/api/v2/organizations/default/workspaces', {
        text: 'data[type]=workspaces&data[attributes][name]=form',
        contentType: 'application/x-www-form-urlencoded',
      });
      assertError(form, 415, 'unsupported_media_type', { context: serverLog });
      const cv = await newConfigurationVersion(workspace.id);
      const zip = await http.request('PUT', new URL(cv.attributes['upload-url']!).pathname, { bytes: Buffer.from('PK\x03\x04'), contentType: 'application/zip' });
      assertError(zip, 415, 'unsupported_media_type', { context: serverLog });
      // The agent protocol parses the same way, before it looks at the token.
      const register = await http.request('POST', '/api/agent/v1/register', { text: '{"name":', contentType: 'application/json' });
      assertError(register, 400, 'invalid_request', { detail: 'not valid JSON' });
    });

    test('a body of the wrong shape is 422 validation_failed, names the field, and creates nothing', async () => {
      const workspace = await newWorkspace();
      const suffix = randomBytes(3).toString('hex');
      const workspaceCases: [string, Record<string, unknown>, string][] = [
        ['missing data.type', { data: { attributes: { name: `no-type-${suffix}` } } }, 'data.type'],
        ['wrong data.type', { data: { type: 'agent-pools', attributes: { name: `wrong-type-${suffix}` } } }, 'data.type'],
        ['bad name', { data: { type: 'workspaces', attributes: { name: `bad name!${suffix}` } } }, 'data.attributes.name'],
        ['empty name', { data: { type: 'workspaces', attributes: { name: '' } } }, 'data.attributes.name'],
        [
          'bad engine version',
          { data: { type: 'workspaces', attributes: { name: `bad-version-${suffix}`, 'terraform-version': 'latest' } } },
          'data.attributes.terraform-version',
        ],
        [
          'unknown engine',
          { data: { type: 'workspaces', attributes: { name: `bad-engine-${suffix}`, engine: 'pulumi' } } },
          'data.attributes.engine',
        ],
        [
          'working directory outside the configuration',
          { data: { type: 'workspaces', attributes: { name: `bad-wd-${suffix}`, 'working-directory': '../elsewhere' } } },
          'data.attributes.working-directory',
        ],
        ['an array', [] as unknown as Record<string, unknown>, '(body)'],
      ];
      for (const [what, json, field] of workspaceCases) {
        const response = await http.request('POST', '/api/v2/organizations/default/workspaces', { json });
        assertError(response, 422, 'validation_failed', { detail: field, context: () => `case: ${what}\n${serverLog()}` });
      }
      const workspaces = await http.expect<{ data: Workspace[] }>('GET', '/api/v2/organizations/default/workspaces', 200);
      const leftovers = workspaces.data.filter((ws) => ws.attributes.name.includes(suffix));
      assert.deepEqual(leftovers, [], 'a refused workspace was created anyway');

      const patched = await http.request('PATCH', `/api/v2/workspaces/${workspace.id}`, {
        json: { data: { type: 'workspaces', attributes: { 'terraform-version': '1.x' } } },
      });
      assertError(patched, 422, 'validation_failed', { detail: 'data.attributes.terraform-version' });

      const poolResponse = await http.request('POST', '/api/v2/organizations/default/agent-pools', {
        json: { data: { type: 'agent-pools', attributes: { name: `-bad pool ${suffix}` } } },
      });
      assertError(poolResponse, 422, 'validation_failed', { detail: 'data.attributes.name' });

      const variableCases: [string, Record<string, unknown>, string][] = [
        ['unknown category', { key: `cat_${suffix}`, value: 'v', category: 'bogus' }, 'data.attributes.category'],
        ['missing category', { key: `nocat_${suffix}`, value: 'v' }, 'data.attributes.category'],
        ['bad key', { key: `1-not an identifier ${suffix}`, value: 'v', category: 'env' }, 'data.attributes.key'],
        ['value not a string', { key: `num_${suffix}`, value: 42, category: 'terraform' }, 'data.attributes.value'],
      ];
      for (const [what, attributes, field] of variableCases) {
        const response = await http.request('POST', `/api/v2/workspaces/${workspace.id}/vars`, { json: { data: { type: 'vars', attributes } } });
        assertError(response, 422, 'validation_failed', { detail: field, context: () => `case: ${what}\n${serverLog()}` });
      }
      // PostgreSQL text cannot store a NUL character; both backends refuse it up front.
      const nulVariable = await http.request('POST', `/api/v2/workspaces/${workspace.id}/vars`, {
        json: { data: { type: 'vars', attributes: { key: `nul_${suffix}`, value: 'before\u0000after', category: 'env' } } },
      });
      assertError(nulVariable, 422, 'validation_failed', { detail: 'data.attributes.value', context: serverLog });
      const nulDescription = await http.request('POST', `/api/v2/workspaces/${workspace.id}/vars`, {
        json: { data: { type: 'vars', attributes: { key: `nul_${suffix}`, value: 'v', category: 'env', description: '\u0000' } } },
      });
      assertError(nulDescription, 422, 'validation_failed', { detail: 'data.attributes.description', context: serverLog });
      const variables = await http.expect<{ data: unknown[] }>('GET', `/api/v2/workspaces/${workspace.id}/vars`, 200);
      assert.deepEqual(variables.data, [], 'a refused variable was created anyway');

      const runCases: [string, unknown, string][] = [
        ['missing relationships', { data: { type: 'runs', attributes: {} } }, 'data.relationships'],
        ['wrong data.type', { data: { ...runBody(workspace.id, 'cv-x').data, type: 'workspaces' } }, 'data.type'],
        ['is-destroy not a boolean', { data: { ...runBody(workspace.id, 'cv-x').data, attributes: { 'is-destroy': 'yes' } } }, 'data.attributes.is-destroy'],
        ['a NUL in the message', { data: { ...runBody(workspace.id, 'cv-x').data, attributes: { message: 'a\u0000b' } } }, 'data.attributes.message'],
      ];
      for (const [what, json, field] of runCases) {
        const response = await http.request('POST', '/api/v2/runs', { json });
        assertError(response, 422, 'validation_failed', { detail: field, context: () => `case: ${what}\n${serverLog()}` });
      }
    });

    test('a duplicate pool, workspace or variable name is 409 already_exists', async () => {
      const suffix = randomBytes(3).toString('hex');
      const poolName = `dup-pool-${suffix}`;
      const poolJson = { data: { type: 'agent-pools', attributes: { name: poolName } } };
      await http.expect('POST', '/api/v2/organizations/default/agent-pools', 201, { json: poolJson });
      assertError(await http.request('POST', '/api/v2/organizations/default/agent-pools', { json: poolJson }), 409, 'already_exists', {
        detail: poolName,
      });

      const first = await newWorkspace(`dup-ws-${suffix}`);
      const second = await newWorkspace(`other-ws-${suffix}`);
      const again = await http.request('POST', '/api/v2/organizations/default/workspaces', {
        json: { data: { type: 'workspaces', attributes: { name: first.attributes.name } } },
      });
      assertError(again, 409, 'already_exists', { detail: first.attributes.name });
      const renamed = await http.request('PATCH', `/api/v2/workspaces/${second.id}`, {
        json: { data: { type: 'workspaces', attributes: { name: first.attributes.name } } },
      });
      assertError(renamed, 409, 'already_exists', { detail: first.attributes.name });
      const unchanged = await http.expect<{ data: Workspace }>('GET', `/api/v2/workspaces/${second.id}`, 200);
      assert.equal(unchanged.data.attributes.name, `other-ws-${suffix}`);

      const variable = { data: { type: 'vars', attributes: { key: 'REGION', value: 'eu', category: 'env' } } };
      await http.expect('POST', `/api/v2/workspaces/${first.id}/vars`, 201, { json: variable });
      assertError(await http.request('POST', `/api/v2/workspaces/${first.id}/vars`, { json: variable }), 409, 'already_exists', {
        detail: 'REGION',
      });
      // The same key is fine in the other category and in another workspace.
      await http.expect('POST', `/api/v2/workspaces/${first.id}/vars`, 201, {
        json: { data: { type: 'vars', attributes: { key: 'REGION', value: 'eu', category: 'terraform' } } },
      });
      await http.expect('POST', `/api/v2/workspaces/${second.id}/vars`, 201, { json: variable });
      const listed = await http.expect<{ data: Resource<{ key: string; category: string }>[] }>('GET', `/api/v2/workspaces/${first.id}/vars`, 200);
      assert.deepEqual(listed.data.map((v) => `${v.attributes.category}:${v.attributes.key}`).sort(), ['env:REGION', 'terraform:REGION']);

      // Renaming a variable onto another one's key is a duplicate too.
      const zone = await http.expect<{ data: Resource<{ key: string }> }>('POST', `/api/v2/workspaces/${first.id}/vars`, 201, {
        json: { data: { type: 'vars', attributes: { key: 'ZONE', value: 'a', category: 'env' } } },
      });
      const clash = await http.request('PATCH', `/api/v2/workspaces/${first.id}/vars/${zone.data.id}`, {
        json: { data: { type: 'vars', attributes: { key: 'REGION' } } },
      });
      assertError(clash, 409, 'already_exists', { detail: 'REGION', context: serverLog });
      const keys = await http.expect<{ data: Resource<{ key: string; category: string }>[] }>('GET', `/api/v2/workspaces/${first.id}/vars`, 200);
      assert.deepEqual(keys.data.map((v) => `${v.attributes.category}:${v.attributes.key}`).sort(), ['env:REGION', 'env:ZONE', 'terraform:REGION']);
    });

    test('concurrent requests for the same name: one is created, the others are 409 already_exists', async () => {
      const suffix = randomBytes(3).toString('hex');
      const workspace = await newWorkspace();
      const other = await newWorkspace();
      const races: [string, string, string, unknown][] = [
        ['pool', 'POST', '/api/v2/organizations/default/agent-pools', { data: { type: 'agent-pools', attributes: { name: `race-${suffix}` } } }],
        ['workspace', 'POST', '/api/v2/organizations/default/workspaces', { data: { type: 'workspaces', attributes: { name: `race-${suffix}` } } }],
        ['variable', 'POST', `/api/v2/workspaces/${workspace.id}/vars`, { data: { type: 'vars', attributes: { key: 'RACE', value: 'v', category: 'env' } } }],
      ];
      for (const [what, method, urlPath, json] of races) {
        const responses = await Promise.all(Array.from({ length: 12 }, () => http.request(method, urlPath, { json })));
        const created = responses.filter((response) => response.status === 201);
        assert.equal(created.length, 1, `${what}: expected one 201 among ${responses.map((r) => r.status).join(' ')}\n${serverLog()}`);
        for (const response of responses.filter((r) => r.status !== 201)) {
          assertError(response, 409, 'already_exists', { context: () => `${what}\n${serverLog()}` });
        }
      }
      // Two workspaces renamed to the same free name at once.
      const target = `renamed-${suffix}`;
      const renames = await Promise.all(
        [workspace.id, other.id].map((id) =>
          http.request('PATCH', `/api/v2/workspaces/${id}`, { json: { data: { type: 'workspaces', attributes: { name: target } } } }),
        ),
      );
      assert.deepEqual(renames.map((r) => r.status).sort(), [200, 409], renames.map((r) => r.text).join('\n'));
      assertError(renames.find((r) => r.status !== 200)!, 409, 'already_exists');
    });

    test('a run on a configuration version not uploaded, and apply of a run not planned, are 409 conflict', async () => {
      const workspace = await newWorkspace();
      const pending = await newConfigurationVersion(workspace.id);
      assertError(await http.request('POST', '/api/v2/runs', { json: runBody(workspace.id, pending.id) }), 409, 'conflict', {
        detail: pending.id,
        context: serverLog,
      });
      const runs = await http.expect<{ data: Run[] }>('GET', `/api/v2/workspaces/${workspace.id}/runs`, 200);
      assert.deepEqual(runs.data, [], 'the refused run was created anyway');

      // The pool has no agent, so the run waits in plan_queued: not planned.
      const uploaded = await newConfigurationVersion(workspace.id);
      const archive = await packFiles({ 'main.tf': 'output "greeting" { value = "hello" }\n' });
      await http.expect('PUT', new URL(uploaded.attributes['upload-url']!).pathname, 200, { bytes: archive });
      const run = (await http.expect<{ data: Run }>('POST', '/api/v2/runs', 201, { json: runBody(workspace.id, uploaded.id) })).data;
      assert.equal(run.attributes.status, 'plan_queued');
      assertError(await http.request('POST', `/api/v2/runs/${run.id}/actions/apply`), 409, 'conflict', { context: serverLog });
      const still = await http.expect<{ data: Run }>('GET', `/api/v2/runs/${run.id}`, 200);
      assert.equal(still.data.attributes.status, 'plan_queued', 'a refused apply changed the run');
      // Nor can the workspace with an active run, or the pool its workspaces use, be deleted.
      assertError(await http.request('DELETE', `/api/v2/workspaces/${workspace.id}`), 409, 'conflict', { detail: run.id });
      assertError(await http.request('DELETE', `/api/v2/agent-pools/${pool.id}`), 409, 'conflict', { detail: 'used by workspaces' });
      await http.expect('GET', `/api/v2/workspaces/${workspace.id}`, 200);
      await http.expect('GET', `/api/v2/agent-pools/${pool.id}`, 200);

      // A finished run cannot be applied either.
      await http.expect('POST', `/api/v2/runs/${run.id}/actions/cancel`, 202);
      const canceled = await http.expect<{ data: Run }>('GET', `/api/v2/runs/${run.id}`, 200);
      assert.equal(canceled.data.attributes.status, 'canceled');
      assertError(await http.request('POST', `/api/v2/runs/${run.id}/actions/apply`), 409, 'conflict');
      assertError(await http.request('POST', `/api/v2/runs/${run.id}/actions/discard`), 409, 'conflict');
    });

    test('a JSON body over 1 MiB is 413 payload_too_large and creates nothing', async () => {
      const workspace = await newWorkspace();
      const padding = 'x'.repeat(MiB + 1024);
      const name = `huge-${randomBytes(3).toString('hex')}`;
      const oversized: [string, unknown][] = [
        ['/api/v2/organizations/default/workspaces', { data: { type: 'workspaces', attributes: { name, padding } } }],
        [`/api/v2/workspaces/${workspace.id}/vars`, { data: { type: 'vars', attributes: { key: 'HUGE', value: padding, category: 'env' } } }],
        ['/api/agent/v1/register', { name: padding }],
      ];
      for (const [urlPath, json] of oversized) {
        for (const chunked of [false, true]) {
          const body = Buffer.from(JSON.stringify(json));
          const response = await sendEarlyAnswered(server.url, 'POST', urlPath, server.adminToken, body, { chunked, contentType: 'application/vnd.api+json' });
          assertError(response, 413, 'payload_too_large', { context: serverLog });
        }
      }

      const workspaces = await http.expect<{ data: Workspace[] }>('GET', '/api/v2/organizations/default/workspaces', 200);
      assert.ok(!workspaces.data.some((ws) => ws.attributes.name === name), 'the refused workspace was created');
      const variables = await http.expect<{ data: unknown[] }>('GET', `/api/v2/workspaces/${workspace.id}/vars`, 200);
      assert.deepEqual(variables.data, []);
      // The server is still fine.
      await http.expect('GET', `/api/v2/workspaces/${workspace.id}`, 200);
    });

    test('an upload over OUTPOST_MAX_UPLOAD_MB is 413, a non-gzip one 422 archive_invalid; neither stores anything', async () => {
      const workspace = await newWorkspace();
      const cv = await newConfigurationVersion(workspace.id);
      const uploadPath = new URL(cv.attributes['upload-url']!).pathname;
      const twoMiB = gzipSync(randomBytes(2 * MiB)); // real gzip framing, 2 MiB and a bit

      // With a Content-Length the server refuses before reading; chunked, it counts the bytes as they come.
      for (const chunked of [false, true]) {
        const tooLarge = await sendEarlyAnswered(server.url, 'PUT', uploadPath, server.adminToken, twoMiB, { chunked });
        assertError(tooLarge, 413, 'payload_too_large', { context: serverLog });
      }

      const notGzip = await http.request('PUT', uploadPath, { bytes: Buffer.from('this is a plain text file, not a .tar.gz\n'.repeat(10)) });
      assertError(notGzip, 422, 'archive_invalid', { context: serverLog });
      const plainTar = Buffer.alloc(1024); // an (empty) uncompressed tar
      assertError(await http.request('PUT', uploadPath, { bytes: plainTar }), 422, 'archive_invalid');

      const after = await http.expect<{ data: Resource<ConfigurationVersionAttributes> }>('GET', `/api/v2/configuration-versions/${cv.id}`, 200);
      assert.equal(after.data.attributes.status, 'pending', 'a refused upload changed the configuration version');
      assert.equal(after.data.attributes.size, null);
      assert.ok(after.data.attributes['upload-url'], 'a pending configuration version keeps its upload-url');
      assert.deepEqual(await findNamesContaining(server.dataDir, cv.id), [], `a refused upload left a file in ${server.dataDir}`);
      assertError(await http.request('POST', '/api/v2/runs', { json: runBody(workspace.id, cv.id) }), 409, 'conflict');

      // The refusals used nothing up: a proper archive is accepted once, and only once.
      const archive = await packFiles({ 'main.tf': 'output "ok" { value = true }\n' });
      await http.expect('PUT', uploadPath, 200, { bytes: archive });
      const uploaded = await http.expect<{ data: Resource<ConfigurationVersionAttributes> }>('GET', `/api/v2/configuration-versions/${cv.id}`, 200);
      assert.equal(uploaded.data.attributes.status, 'uploaded');
      assert.equal(uploaded.data.attributes.size, archive.length);
      assertError(await http.request('PUT', uploadPath, { bytes: archive }), 409, 'conflict');
    });
  });
}
