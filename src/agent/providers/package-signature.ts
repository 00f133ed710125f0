// Checks the detached OpenPGP signature a provider registry publishes for a
// release's SHA256SUMS, against the keys the registry lists for it: the same
// check the engine makes when it installs from a registry itself. Without it,
// a cache that is reached over TLS but fills itself from registries would
// quietly downgrade packages from "signed by the publisher" to "came over TLS".
// openpgp is loaded on first use: most agents never verify anything until a
// job asks for a provider that is not cached.

export interface SigningKey {
  ascii_armor: string;
  key_id?: string | undefined;
}

export class SignatureInvalid extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureInvalid';
  }
}

/** Resolves when one of `keys` made `signature` over `signed`; throws SignatureInvalid otherwise. */
export async function verifyDetachedSignature(signed: Buffer, signature: Buffer, keys: readonly SigningKey[]): Promise<void> {
  const openpgp = await import('openpgp');
  let parsedSignature: Awaited<ReturnType<typeof openpgp.readSignature>>;
  try {
    parsedSignature = await openpgp.readSignature({ binarySignature: new Uint8Array(signature) });
  } catch (error) {
    throw new SignatureInvalid(`the SHA256SUMS signature cannot be read: ${(error as Error).message}`);
  }
  const verificationKeys = [];
  for (const key of keys) {
    try {
      verificationKeys.push(await openpgp.readKey({ armoredKey: key.ascii_armor }));
    } catch {
      // A key we cannot parse cannot have made the signature; the others may have.
    }
  }
  if (verificationKeys.length === 0) throw new SignatureInvalid('none of the registry\'s signing keys can be read');
  // Verified as of the signature's own creation time: publishers' keys expire,
  // and a release signed while its key was valid stays valid (as in the engines).
  const createdAt = parsedSignature.packets[0]?.created ?? undefined;
  const result = await openpgp.verify({
    message: await openpgp.createMessage({ binary: new Uint8Array(signed) }),
    signature: parsedSignature,
    verificationKeys,
    expectSigned: false,
    ...(createdAt ? { date: createdAt } : {}),
  });
  for (const outcome of result.signatures) {
    try {
      await outcome.verified;
      return;
    } catch {
      // Try the next signature packet.
    }
  }
  throw new SignatureInvalid('the SHA256SUMS signature was not made by any of the registry\'s signing keys');
}
