// Pre-signed URLs, as TFE's archivist hands out: TFE clients (go-tfe, the
// `tofu` CLI's cloud backend) upload configurations and read logs and state
// from URLs they are given, sending no token. Such a URL names one object and
// one method, carries its expiry, and an HMAC-SHA256 over the three; anyone
// holding it may do exactly that until it expires, nothing else.
//
// The signing key is derived from OUTPOST_ENCRYPTION_KEY, which replicas
// already share, so a URL made by one replica is honoured by the others.
// Nothing is stored: a URL cannot be revoked, which is why it lives minutes.
//
// The expiry and the signature travel in the path, not the query: go-tfe's
// log reader replaces a log URL's query with its own offset and limit.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { OutpostError } from '../../protocol/errors.ts';

export type SignedMethod = 'GET' | 'PUT';

/** Where signed URLs live: `/_signed/<expiry>.<signature>/<object path>` (`…/configuration-versions/cv-…/upload`). */
export const signedPrefix = '/_signed/';

/** The route prefix of signed URLs, with the `grant` parameter (expiry and signature) the routes pass to verify. */
export const signedRoutePrefix = `${signedPrefix}:grant/`;

export interface SignedParams {
  grant: string;
}

export class UrlSigner {
  readonly #key: Buffer;

  /** `secret`: the server's sealing key; a key for signing alone is derived from it. */
  constructor(secret: Buffer) {
    this.#key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'outpost pre-signed urls v1', 32));
  }

  /** The path of a URL allowing `method` on `object` until `expiresAtMs`. */
  sign(method: SignedMethod, object: string, expiresAtMs: number): string {
    const expires = Math.ceil(expiresAtMs / 1000);
    return `${signedPrefix}${expires}.${this.#mac(method, object, expires)}/${object}`;
  }

  /**
   * Checks a request for `object` with `method`. A wrong or missing signature
   * is `url_signature_invalid`; a valid one past its expiry is `url_expired`.
   * Nothing about the object is looked at before this passes, so a caller
   * without a valid URL learns nothing, not even whether the object exists.
   */
  verify(method: string, object: string, grant: string, nowMs: number): void {
    this.#check(method, object, grant, nowMs, false);
  }

  /**
   * As verify, but a URL past its expiry is still good while `live` says its
   * object can change (a log read while its phase runs, which may take
   * longer than any expiry): asked only once the signature is valid.
   */
  async verifyWhileLive(method: string, object: string, grant: string, nowMs: number, live: () => Promise<boolean>): Promise<void> {
    if (this.#check(method, object, grant, nowMs, true) && !(await live())) {
      throw new OutpostError('url_expired', `this URL expired at ${new Date(Number(grant.split('.')[0]) * 1000).toISOString()}; ask the API for a new one`);
    }
  }

  /** Throws on a bad signature (and on expiry unless `allowExpired`); returns whether the URL has expired. */
  #check(method: string, object: string, grant: string, nowMs: number, allowExpired: boolean): boolean {
    const [expiresText = '', signature = ''] = grant.split('.', 2);
    const expires = /^\d{1,12}$/.test(expiresText) ? Number(expiresText) : Number.NaN;
    const given = Buffer.from(signature, 'base64url');
    if (!Number.isSafeInteger(expires) || given.length === 0) {
      throw new OutpostError('url_signature_invalid', 'this URL lacks the expiry and signature it was issued with; ask the API for a new one');
    }
    const wanted = Buffer.from(this.#mac(method, object, expires), 'base64url');
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
      throw new OutpostError('url_signature_invalid', `this URL is not signed for ${method} of this object; ask the API for a new one`);
    }
    const expired = expires * 1000 <= nowMs;
    if (expired && !allowExpired) {
      throw new OutpostError('url_expired', `this URL expired at ${new Date(expires * 1000).toISOString()}; ask the API for a new one`);
    }
    return expired;
  }

  #mac(method: string, object: string, expires: number): string {
    return createHmac('sha256', this.#key).update(`${method}\n${object}\n${expires}`).digest('base64url');
  }
}
