// The TLS identity of the agent's provider mirror. OpenTofu and Terraform
// accept only https:// network mirrors, so the agent serves its loopback
// mirror with a certificate it makes at start: a throwaway CA (its private
// key never leaves this process and is never written to disk) and a leaf for
// the loopback names, signed by it. Jobs trust that CA alone, through a CA
// bundle the job operation builds for the engine.
//
// The two certificates are written here in DER (x509-der.ts) and signed with
// node:crypto: an X.509 library (with its ASN.1 schemas and dependency
// injection) cost every agent about 20 MiB of resident memory for these two.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { bitString, boolean, contextExplicit, contextPrimitive, integer, name, octetString, oid, sequence, time, toPem } from './x509-der.ts';

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

const oids = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
};
/** KeyUsage bits, as the first byte of the BIT STRING (bit 0 is 0x80) and its unused trailing bits. */
const keyUsage = { digitalSignature: [0x80, 7], keyCertSignAndCrlSign: [0x06, 1] } as const;

export async function createMirrorCertificate(options: MirrorCertificateOptions): Promise<MirrorCertificate> {
  const validity = sequence(time(new Date(Date.now() - 60 * 60_000)), time(new Date(Date.now() + (options.validDays ?? 3650) * 24 * 60 * 60_000)));
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caId = keyIdentifier(caKeys.publicKey);
  // Unique, with key identifiers below: a trust store holding several of
  // these CAs (one per agent or test registry) must find the right issuer.
  const caName = name(`${options.issuer ?? 'Outpost agent provider mirror CA'} ${randomBytes(4).toString('hex')}`);
  const ca = certificate({
    issuer: caName,
    subject: caName,
    validity,
    publicKey: caKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      extension(oids.basicConstraints, true, sequence(boolean(true), integer(Buffer.from([0])))),
      extension(oids.keyUsage, true, bitString(Buffer.from([keyUsage.keyCertSignAndCrlSign[0]]), keyUsage.keyCertSignAndCrlSign[1])),
      extension(oids.subjectKeyIdentifier, false, octetString(caId)),
    ],
  });
  const leafKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = certificate({
    issuer: caName,
    subject: name(options.hosts[0] ?? 'localhost'),
    validity,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      extension(oids.basicConstraints, true, sequence()),
      extension(oids.keyUsage, true, bitString(Buffer.from([keyUsage.digitalSignature[0]]), keyUsage.digitalSignature[1])),
      extension(oids.extendedKeyUsage, false, sequence(oid(oids.serverAuth))),
      extension(oids.authorityKeyIdentifier, false, sequence(contextPrimitive(0, caId))),
      extension(oids.subjectAltName, false, sequence(...options.hosts.map(generalName))),
    ],
  });
  return {
    caPem: toPem('CERTIFICATE', ca),
    certPem: toPem('CERTIFICATE', leaf),
    keyPem: leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

interface CertificateFields {
  issuer: Buffer;
  subject: Buffer;
  validity: Buffer;
  publicKey: KeyObject;
  signingKey: KeyObject;
  extensions: Buffer[];
}

/** RFC 5280 §4.1: a v3 certificate, ECDSA with SHA-256. */
function certificate(fields: CertificateFields): Buffer {
  const algorithm = sequence(oid(oids.ecdsaWithSha256));
  const tbs = sequence(
    contextExplicit(0, integer(Buffer.from([2]))),
    integer(serial()),
    algorithm,
    fields.issuer,
    fields.validity,
    fields.subject,
    fields.publicKey.export({ type: 'spki', format: 'der' }),
    contextExplicit(3, sequence(...fields.extensions)),
  );
  // ECDSA signatures from node:crypto are DER (r, s), as X.509 stores them.
  return sequence(tbs, algorithm, bitString(sign('sha256', tbs, fields.signingKey)));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** RFC 5280 §4.2.1.2, method 1: SHA-1 of the public key's bits (for EC, the point 04‖x‖y). */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return createHash('sha1').update(point).digest();
}

/** dNSName [2] or iPAddress [7] (4 or 16 bytes). */
function generalName(host: string): Buffer {
  const version = isIP(host);
  if (version === 0) return contextPrimitive(2, Buffer.from(host, 'ascii'));
  return contextPrimitive(7, version === 4 ? Buffer.from(host.split('.').map(Number)) : ipv6Bytes(host));
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const words = tail === undefined ? groups(head) : [...groups(head), ...Array<string>(8 - groups(head).length - groups(tail).length).fill('0'), ...groups(tail)];
  return Buffer.from(words.flatMap((word) => [parseInt(word, 16) >> 8, parseInt(word, 16) & 0xff]));
}

/** A positive 16-byte serial number, as RFC 5280 asks. */
function serial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
}
