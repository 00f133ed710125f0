import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { OutpostError } from '../../protocol/errors.ts';
import { UrlSigner } from './signed-urls.ts';

const now = Date.UTC(2026, 0, 1);
const signer = new UrlSigner(randomBytes(32));

/** The grant of a signed path: what the routes get as `:grant`. */
function grantOf(path: string): string {
  return path.split('/')[2]!;
}

function refusedWith(code: string, check: () => void): void {
  assert.throws(check, (error: unknown) => error instanceof OutpostError && error.code === code);
}

test('a signed URL allows its method on its object until it expires', () => {
  const path = signer.sign('GET', 'plans/plan-a/logs', now + 60_000);
  assert.match(path, /^\/_signed\/\d+\.[A-Za-z0-9_-]+\/plans\/plan-a\/logs$/);
  signer.verify('GET', 'plans/plan-a/logs', grantOf(path), now);
});

test('another object, another method, a tampered signature or expiry are refused with a code', () => {
  const grant = grantOf(signer.sign('GET', 'plans/plan-a/logs', now + 60_000));
  refusedWith('url_signature_invalid', () => signer.verify('GET', 'plans/plan-b/logs', grant, now));
  refusedWith('url_signature_invalid', () => signer.verify('PUT', 'plans/plan-a/logs', grant, now));
  const [expires, signature] = grant.split('.') as [string, string];
  refusedWith('url_signature_invalid', () => signer.verify('GET', 'plans/plan-a/logs', `${Number(expires) + 3600}.${signature}`, now));
  const flipped = `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`;
  refusedWith('url_signature_invalid', () => signer.verify('GET', 'plans/plan-a/logs', `${expires}.${flipped}`, now));
  for (const broken of ['', '.', 'abc.def', `${expires}.`, `-1.${signature}`, `1e9.${signature}`]) {
    refusedWith('url_signature_invalid', () => signer.verify('GET', 'plans/plan-a/logs', broken, now));
  }
});

test('an expired URL is refused, unless its object is still live', async () => {
  const grant = grantOf(signer.sign('GET', 'plans/plan-a/logs', now + 60_000));
  refusedWith('url_expired', () => signer.verify('GET', 'plans/plan-a/logs', grant, now + 61_000));
  await signer.verifyWhileLive('GET', 'plans/plan-a/logs', grant, now + 61_000, async () => true);
  await assert.rejects(
    signer.verifyWhileLive('GET', 'plans/plan-a/logs', grant, now + 61_000, async () => false),
    (error: unknown) => error instanceof OutpostError && error.code === 'url_expired',
  );
  // Liveness never rescues a bad signature, and is not even asked.
  let asked = false;
  await assert.rejects(
    signer.verifyWhileLive('GET', 'plans/plan-b/logs', grant, now + 61_000, async () => (asked = true)),
    (error: unknown) => error instanceof OutpostError && error.code === 'url_signature_invalid',
  );
  assert.equal(asked, false);
});

test('a URL signed with another key (another server) is refused', () => {
  const other = new UrlSigner(randomBytes(32));
  const grant = grantOf(other.sign('GET', 'plans/plan-a/logs', now + 60_000));
  refusedWith('url_signature_invalid', () => signer.verify('GET', 'plans/plan-a/logs', grant, now));
});

test('replicas sharing the sealing key honour each other\'s URLs', () => {
  const key = randomBytes(32);
  const grant = grantOf(new UrlSigner(key).sign('PUT', 'configuration-versions/cv-1/upload', now + 60_000));
  new UrlSigner(Buffer.from(key)).verify('PUT', 'configuration-versions/cv-1/upload', grant, now);
});
