// A private certificate authority and a server certificate for tests that
// serve HTTPS, made with the openssl CLI into a temp dir: clients trust the
// CA (SSL_CERT_FILE for Go programs such as tofu, NODE_EXTRA_CA_CERTS for
// Node processes, an undici Agent for the test's own requests), never the
// server certificate itself, so a rotated certificate from the same CA is
// trusted as a renewed one would be in production.
//
//   const certificates = await makeTestCertificates(t);
//   const server = await startServer({ backend, t, tls: certificates });
//   const before = await servedCertificate(server.url, certificates.caPem);
//   const renewed = await certificates.rotate();
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import type { TestHooks } from './test-hooks.ts';
import { tempDir } from './files.ts';

const run = promisify(execFile);

/** What a server needs to serve HTTPS and its clients to trust it. */
export interface ServerTls {
  /** PEM of the CA that signs every server certificate here. */
  readonly caFile: string;
  readonly caPem: string;
  /** The server certificate and its key: what OUTPOST_TLS_CERT and OUTPOST_TLS_KEY point at. */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestCertificates extends ServerTls {
  readonly dir: string;
  /** The certificate now in certFile. */
  current(): Promise<CertificateIdentity>;
  /**
   * Issues a new server certificate (new key, new serial) from the same CA and
   * replaces certFile and keyFile with it, each by a rename as cert-manager's
   * Secret volumes and certbot's symlinks do; returns the new certificate.
   */
  rotate(): Promise<CertificateIdentity>;
}

export interface CertificateIdentity {
  /** As Node's X509Certificate reports it: upper-case hex. */
  readonly serialNumber: string;
  readonly fingerprint256: string;
}

/** The names the server certificate is valid for: what tests connect to. */
export const serverNames = ['localhost', '127.0.0.1'] as const;

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  try {
    await run('openssl', [...args], { cwd: dir });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr ?? (error as Error).message}`);
  }
}

function identityOf(pem: string | Buffer): CertificateIdentity {
  const certificate = new X509Certificate(pem);
  return { serialNumber: certificate.serialNumber, fingerprint256: certificate.fingerprint256 };
}

/**
 * Makes a CA (EC P-256, valid two days) and a server certificate for
 * localhost and 127.0.0.1 in a temp dir removed when the test ends.
 */
export async function makeTestCertificates(t: TestHooks): Promise<TestCertificates> {
  const dir = await tempDir(t, 'outpost-tls-');
  const caKey = path.join(dir, 'ca.key');
  const caFile = path.join(dir, 'ca.pem');
  const certFile = path.join(dir, 'server.pem');
  const keyFile = path.join(dir, 'server.key');
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=Outpost test CA',
  ]);
  const extensions = path.join(dir, 'server.ext');
  // Go (tofu) checks the names in subjectAltName only, never the common name.
  await writeFile(
    extensions,
    [
      `subjectAltName = ${serverNames.map((name) => (/^[\d.]+$/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(', ')}`,
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = serverAuth',
      '',
    ].join('\n'),
  );

  let issued = 0;
  const issue = async (): Promise<CertificateIdentity> => {
    issued += 1;
    const stem = path.join(dir, `issue-${issued}`);
    await openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${stem}.key`, '-out', `${stem}.csr`, '-subj', '/CN=localhost']);
    // A random serial, as a CA gives each certificate its own.
    const serial = `0x${randomBytes(8).toString('hex')}`;
    await openssl(dir, ['x509', '-req', '-in', `${stem}.csr`, '-CA', caFile, '-CAkey', caKey, '-set_serial', serial, '-days', '1', '-extfile', extensions, '-out', `${stem}.pem`]);
    // The key first: until the certificate follows, the pair does not load
    // and the server keeps serving the previous one.
    await rename(`${stem}.key`, keyFile);
    await rename(`${stem}.pem`, certFile);
    return identityOf(await readFile(certFile));
  };
  await issue();
  return {
    dir,
    caFile,
    caPem: await readFile(caFile, 'utf8'),
    certFile,
    keyFile,
    current: async () => identityOf(await readFile(certFile)),
    rotate: issue,
  };
}

/** An undici dispatcher that trusts the system's CAs and `caPem`, for the test's own HTTPS requests. */
export function trustingDispatcher(caPem: string): Agent {
  return new Agent({ connect: { ca: [...tls.rootCertificates, caPem] } });
}

/**
 * The certificate a TLS server at `url` presents now, over a new connection
 * that verifies it against `caPem` and the URL's host name (SNI is sent for
 * names, as browsers and Go do; not for IP addresses).
 */
export async function servedCertificate(url: string, caPem: string): Promise<CertificateIdentity> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ca: [caPem], ...(/^[\d.]+$/.test(hostname) ? {} : { servername: hostname }) }, () => {
      const certificate = socket.getPeerX509Certificate();
      socket.end();
      if (!certificate) reject(new Error(`${url} presented no certificate`));
      else resolve({ serialNumber: certificate.serialNumber, fingerprint256: certificate.fingerprint256 });
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`TLS handshake with ${url} did not finish within 10 s`)));
    socket.once('error', reject);
  });
}
