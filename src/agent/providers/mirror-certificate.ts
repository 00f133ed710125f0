// The TLS identity of the agent's provider mirror. OpenTofu and Terraform
// accept only https:// network mirrors, so the agent serves its loopback
// mirror with a certificate it makes at start: a throwaway CA (its private
// key never leaves this process and is never written to disk) and a leaf for
// the loopback names, signed by it. Jobs trust that CA alone, through a CA
// bundle the job operation builds for the engine.
import { webcrypto } from 'node:crypto';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export interface MirrorCertificate {
  /** PEM of the CA that signed `certPem`: what a client adds to its trust store. */
  caPem: string;
  /** PEM of the server certificate. */
  certPem: string;
  /** PEM (PKCS #8) of the server certificate's private key. */
  keyPem: string;
}

export interface MirrorCertificateOptions {
  /** DNS names and IP addresses the certificate is valid for. */
  hosts: readonly string[];
  /** Common name of the CA, shown by clients in TLS errors. */
  issuer?: string;
  /** How long the certificates are valid; an agent is restarted (and gets new ones) far more often. */
  validDays?: number;
}

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const ipPattern = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+)$/i;

export async function createMirrorCertificate(options: MirrorCertificateOptions): Promise<MirrorCertificate> {
  x509.cryptoProvider.set(webcrypto as unknown as typeof globalThis.crypto);
  const notBefore = new Date(Date.now() - 60 * 60_000);
  const notAfter = new Date(Date.now() + (options.validDays ?? 3650) * 24 * 60 * 60_000);
  const caKeys = await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    // Unique, with key identifiers below: a trust store holding several of
    // these CAs (one per agent or test registry) must find the right issuer.
    name: `CN=${options.issuer ?? 'Outpost agent provider mirror CA'} ${serial().slice(0, 8)}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${options.hosts[0] ?? 'localhost'}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      new x509.SubjectAlternativeNameExtension(
        options.hosts.map((host) => (ipPattern.test(host) ? { type: 'ip', value: host } : { type: 'dns', value: host })),
      ),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey);
  return { caPem: ca.toString('pem'), certPem: leaf.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

/** A positive random serial number, as RFC 5280 asks. */
function serial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}
