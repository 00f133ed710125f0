// The release packages the provider registry fixture serves: official-style
// zips of OpenTofu's own gRPC test provider (provider-simple-v6) for this
// machine's platform, their SHA256SUMS, and a detached OpenPGP signature of
// those made with a key generated for each registry.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import yazl from 'yazl';
import { providerBinary } from './toolchain.ts';

export interface Package {
  zipName: string;
  zip: Buffer;
  sha256: string;
  sumsName: string;
  sums: Buffer;
  signature: Buffer;
}

export interface SigningKey {
  privateKey: openpgp.PrivateKey;
  keyId: string;
  armoredPublicKey: string;
}

// provider-simple-v6 speaks plugin protocol 6, and we only build it for the machine's own platform.
export const protocols = ['6.0'];
export const platform = { os: 'linux', arch: process.arch === 'arm64' ? 'arm64' : 'amd64' } as const;
// A fixed timestamp inside the zip makes each version's package byte-identical
// across registries and runs, so a hash one test records in a lock file holds in the next.
const zipTimestamp = new Date('2024-01-01T00:00:00Z');
const zipCache = new Map<string, Promise<Buffer>>();

export async function buildPackage(type: string, version: string, signingKey: SigningKey | undefined): Promise<Package> {
  const zipName = `terraform-provider-${type}_${version}_${platform.os}_${platform.arch}.zip`;
  const sumsName = `terraform-provider-${type}_${version}_SHA256SUMS`;
  const zip = await packageZip(type, version);
  const sha256 = createHash('sha256').update(zip).digest('hex');
  const sums = Buffer.from(`${sha256}  ${zipName}\n`);
  const signature = signingKey ? await signDetached(sums, signingKey.privateKey) : Buffer.alloc(0);
  return { zipName, zip, sha256, sumsName, sums, signature };
}

/** Deflated like a real release (and memoized: deflating the 30 MB provider takes most of a second). */
function packageZip(type: string, version: string): Promise<Buffer> {
  const key = `${type}@${version}`;
  let zip = zipCache.get(key);
  if (!zip) {
    zip = buildZip(type, version);
    zipCache.set(key, zip);
  }
  return zip;
}

async function buildZip(type: string, version: string): Promise<Buffer> {
  const zipFile = new yazl.ZipFile();
  // The mode lands in the entry's external attributes, which is what makes the unpacked binary executable.
  zipFile.addBuffer(await readFile(providerBinary()), `terraform-provider-${type}_v${version}`, { mode: 0o100755, mtime: zipTimestamp });
  // Makes every version's package (and so its hash) distinct, although the binary is the same.
  zipFile.addBuffer(Buffer.from(`${version}\n`), 'VERSION', { mode: 0o100644, mtime: zipTimestamp });
  zipFile.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zipFile.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function generateSigningKey(): Promise<SigningKey> {
  // An EdDSA (legacy, v4) key: what GitHub-release-style provider signing keys
  // are, and what the ProtonMail openpgp package in OpenTofu verifies.
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [{ name: 'Outpost test registry', email: 'registry@outpost.test' }],
    format: 'object',
  });
  return { privateKey, keyId: privateKey.getKeyID().toHex().toUpperCase(), armoredPublicKey: publicKey.armor() };
}

async function signDetached(document: Buffer, privateKey: openpgp.PrivateKey): Promise<Buffer> {
  const message = await openpgp.createMessage({ binary: document });
  const signature = await openpgp.sign({ message, signingKeys: privateKey, detached: true, format: 'binary' });
  return Buffer.from(signature);
}
