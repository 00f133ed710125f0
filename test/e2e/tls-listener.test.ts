// The server's own HTTPS listener (OUTPOST_TLS_CERT, OUTPOST_TLS_KEY): it
// serves the configured certificate, its links are https, clients that do
// not trust the CA are refused, and a replaced certificate is served without
// a restart (OUTPOST_TLS_RELOAD_INTERVAL) while a pair that does not load is
// not. The database plays no part in any of this, so SQLite only.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { describeResponse } from '../support/api-calls.ts';
import { startServer } from '../support/cluster.ts';
import { sendRequest } from '../support/json-api-client.ts';
import { makeTestCertificates, servedCertificate, type CertificateIdentity } from '../support/tls.ts';
import { waitUntil } from '../support/waits.ts';

const reload = { OUTPOST_TLS_RELOAD_INTERVAL: '1s' };

test('the server serves HTTPS with its certificate; its links are https; untrusting clients and plain HTTP get nothing', async (t) => {
  const certificates = await makeTestCertificates(t);
  const server = await startServer({ backend: 'sqlite', t, tls: certificates, env: reload });
  const port = new URL(server.url).port;
  assert.equal(server.url, `https://127.0.0.1:${port}`);
  const expected = await certificates.current();
  assert.deepEqual(await servedCertificate(server.url, certificates.caPem), expected);
  assert.deepEqual(await servedCertificate(`https://localhost:${port}`, certificates.caPem), expected, 'valid for localhost too');
  assert.match(server.output(), new RegExp(`"url":"https://127\\.0\\.0\\.1:${port}"`), 'the server says it listens on https');

  // Links the API hands to clients (tofu uploads to this one without a token) are https.
  const workspace = await server.api<{ data: { id: string } }>('POST', '/api/v2/organizations/default/workspaces', { data: { type: 'workspaces', attributes: { name: 'tls-links' } } });
  assert.equal(workspace.status, 201, describeResponse(workspace));
  const version = await server.api<{ data: { attributes: { 'upload-url': string } } }>('POST', `/api/v2/workspaces/${workspace.body.data.id}/configuration-versions`, {
    data: { type: 'configuration-versions', attributes: {} },
  });
  assert.equal(version.status, 201, describeResponse(version));
  assert.ok(version.body.data.attributes['upload-url'].startsWith(`${server.url}/`), version.body.data.attributes['upload-url']);

  // Node's default trust store does not have the test CA: the handshake fails.
  await assert.rejects(sendRequest(server.url, 'GET', '/healthz', {}), (error: Error) => /certificate/i.test(`${error.message} ${String((error.cause as Error | undefined)?.message)}`));
  // Plain HTTP on the TLS port is not served.
  const plain = await sendRequest(`http://127.0.0.1:${port}`, 'GET', '/healthz', {}).then(
    (response) => `HTTP ${response.status}`,
    () => 'refused',
  );
  assert.notEqual(plain, 'HTTP 200', 'plain HTTP is not answered as if it were HTTPS');
});

test('a replaced certificate is served without a restart; a pair that does not load is not, and the previous one stays', async (t) => {
  const certificates = await makeTestCertificates(t);
  const server = await startServer({ backend: 'sqlite', t, tls: certificates, env: reload });
  const pid = server.process.pid;
  const first = await certificates.current();
  assert.deepEqual(await servedCertificate(server.url, certificates.caPem), first);

  const servedBecomes = async (wanted: CertificateIdentity, what: string): Promise<void> => {
    let last: CertificateIdentity | undefined;
    await waitUntil(
      what,
      async () => {
        last = await servedCertificate(server.url, certificates.caPem);
        return last.fingerprint256 === wanted.fingerprint256 ? true : undefined;
      },
      () => `still served: ${JSON.stringify(last)}, wanted ${JSON.stringify(wanted)}\n${server.output().slice(-4000)}`,
      30_000,
    );
  };

  const renewed = await certificates.rotate();
  assert.notEqual(renewed.serialNumber, first.serialNumber);
  await servedBecomes(renewed, 'the renewed certificate to be served');
  assert.equal(server.process.pid, pid, 'the same server process: no restart');
  assert.match(server.output(), /TLS certificate reloaded/);
  const health = await server.api('GET', '/healthz');
  assert.equal(health.status, 200, 'clients that trust the CA carry on');

  // A half-written or wrong file is reported and the renewed pair stays in service.
  const mark = server.output().length;
  await writeFile(certificates.certFile, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
  await waitUntil(
    'the server to report the certificate that does not load',
    async () => (server.output().slice(mark).includes('TLS certificate not reloaded') ? true : undefined),
    () => server.output().slice(mark),
    30_000,
  );
  assert.deepEqual(await servedCertificate(server.url, certificates.caPem), renewed, 'the previous pair is still served');
  assert.equal((await server.api('GET', '/healthz')).status, 200);

  // Fixed files are picked up again.
  const third = await certificates.rotate();
  await servedBecomes(third, 'the next good certificate to be served');
  assert.equal(server.process.pid, pid);
});
