// The state file behind `hosted-state-download-url`: a pre-signed URL that
// TFE's clients follow without a token, good for one state version, one
// method and a few minutes; and the token-checked download beside it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setupWorkspace, startInProcessServer, type InProcessServer } from '../in-process-server.test-support.ts';
import { downloadObject } from './presenter.ts';
import { fetchSigned, foreignToken, pushState, stateText } from './state-api.test-support.ts';

let server: InProcessServer;
before(async () => {
  server = await startInProcessServer();
});
after(async () => {
  await server.close();
});

async function twoStateVersions(): Promise<{ first: { id: string; url: string }; second: { id: string; url: string }; state: string }> {
  const { workspaceId } = await setupWorkspace(server);
  const state = stateText(1, 'dl');
  const first = (await pushState(server, workspaceId, state)).json.data;
  const second = (await pushState(server, workspaceId, stateText(2, 'dl'))).json.data;
  return {
    first: { id: first.id, url: first.attributes['hosted-state-download-url'] },
    second: { id: second.id, url: second.attributes['hosted-state-download-url'] },
    state,
  };
}

function assertRefused(response: { status: number; text: string; json: { errors?: { code: string }[] } }, code: string): void {
  assert.equal(response.status, 403, response.text);
  assert.equal(response.json.errors?.[0]?.code, code, response.text);
  assert.ok(!response.text.includes('"serial"'), 'no state in a refusal');
}

test('the download URL is absolute and pre-signed: no token needed, any token sent along ignored', async () => {
  const { first, state } = await twoStateVersions();
  assert.match(first.url, new RegExp(`^${server.ctx.publicUrl}/_signed/\\d+\\.[\\w-]+/state-versions/${first.id}/download$`));
  const plain = await fetchSigned(server, first.url);
  assert.equal(plain.status, 200, plain.text);
  assert.equal(plain.text, state);
  // go-tfe sends its own Authorization header to every URL; a stranger's or a broken one changes nothing.
  for (const authorization of [`Bearer ${await foreignToken(server)}`, 'Bearer opa_garbage', 'Basic !!!']) {
    const withToken = await fetchSigned(server, first.url, 'GET', { authorization });
    assert.equal(withToken.status, 200, withToken.text);
    assert.equal(withToken.text, state);
  }
});

test('an expired, tampered, borrowed, incomplete or wrong-method URL is 403 with its code', async () => {
  const { first, second } = await twoStateVersions();
  const expired = server.ctx.signer.sign('GET', downloadObject(first.id), Date.now() - 60_000);
  assertRefused(await fetchSigned(server, expired), 'url_expired');

  // The grant (expiry.signature) is the path segment after /_signed/.
  const grantOf = (url: string) => /\/_signed\/([^/]+)\//.exec(url)?.[1] ?? '';
  const grant = grantOf(first.url);
  const [expires = '', signature = ''] = grant.split('.');
  const withGrant = (id: string, replacement: string) => `/_signed/${replacement}/state-versions/${id}/download`;
  // The first character of the signature: all its bits count (the last one's lowest do not).
  const flipped = `${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
  assertRefused(await fetchSigned(server, withGrant(first.id, `${expires}.${flipped}`)), 'url_signature_invalid');
  // A later expiry with the old signature: the expiry is signed too.
  assertRefused(await fetchSigned(server, withGrant(first.id, `${Number(expires) + 3600}.${signature}`)), 'url_signature_invalid');
  // One state version's grant on another's path.
  assertRefused(await fetchSigned(server, withGrant(second.id, grant)), 'url_signature_invalid');
  assert.notEqual(grantOf(second.url), grant);
  for (const partial of [expires, `${expires}.`, `.${signature}`, `soon.${signature}`, 'x']) {
    assertRefused(await fetchSigned(server, withGrant(first.id, partial)), 'url_signature_invalid');
  }
  // A query is no grant.
  const asQuery = await fetchSigned(server, `/_signed/state-versions/${first.id}/download?expires=${expires}&signature=${signature}`);
  assert.equal(asQuery.status, 404, asQuery.text);
  // Signed for another method.
  assertRefused(await fetchSigned(server, server.ctx.signer.sign('PUT', downloadObject(first.id), Date.now() + 60_000)), 'url_signature_invalid');
  const head = await fetchSigned(server, first.url, 'HEAD');
  assert.equal(head.status, 403, 'a GET URL does not allow HEAD');
  const put = await fetchSigned(server, first.url, 'PUT');
  assert.equal(put.status, 404, put.text);
  assert.equal(put.json.errors[0].code, 'route_not_found');
});

test('a validly signed URL of a state version that does not exist is 404', async () => {
  const missing = await fetchSigned(server, server.ctx.signer.sign('GET', downloadObject('sv-doesnotexist1234'), Date.now() + 60_000));
  assert.equal(missing.status, 404, missing.text);
  assert.equal(missing.json.errors[0].code, 'not_found');
});

test('the token-checked download stays, for the caller\'s organization only', async () => {
  const { first, state } = await twoStateVersions();
  const download = await server.request('GET', `/api/v2/state-versions/${first.id}/download`);
  assert.equal(download.status, 200);
  assert.equal(download.text, state);
  const stranger = await foreignToken(server);
  for (const path of [`/api/v2/state-versions/${first.id}/download`, `/api/v2/state-versions/${first.id}`, `/api/v2/state-versions/${first.id}/outputs`]) {
    const refused = await server.request('GET', path, { token: stranger });
    assert.equal(refused.status, 404, `${path}: ${refused.text}`);
  }
  const anonymous = await server.request('GET', `/api/v2/state-versions/${first.id}/download`, { authorization: '' });
  assert.equal(anonymous.status, 401);
});

test('each read of a state version signs a fresh URL that expires after OUTPOST_SIGNED_URL_TTL', async () => {
  const { first } = await twoStateVersions();
  const read = await server.request('GET', `/api/v2/state-versions/${first.id}`);
  const expires = Number(/\/_signed\/(\d+)\./.exec(read.json.data.attributes['hosted-state-download-url'])?.[1]);
  const ttlSeconds = server.ctx.config.signedUrlTtl / 1000;
  const now = Date.now() / 1000;
  assert.ok(expires > now + ttlSeconds - 30 && expires <= now + ttlSeconds + 1, `expires ${expires}, now ${now}`);
});
