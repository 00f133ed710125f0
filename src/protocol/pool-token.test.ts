import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolTokenWithUrl, serverUrlOfPoolToken } from './pool-token.ts';

test('a pool token carries the control plane URL, and only a valid http(s) one is read back', () => {
  const token = poolTokenWithUrl('https://outpost.example.com:8443/', 'Secret123');
  assert.match(token, /^opp_[A-Za-z0-9_-]+\.Secret123$/);
  assert.equal(serverUrlOfPoolToken(token), 'https://outpost.example.com:8443');
  assert.equal(serverUrlOfPoolToken(`opp_${Buffer.from('file:///etc/passwd').toString('base64url')}.x1`), undefined);
  assert.equal(serverUrlOfPoolToken(`opp_${Buffer.from('not a url').toString('base64url')}.x1`), undefined);
  assert.equal(serverUrlOfPoolToken('opp_0123456789abcdef'), undefined, 'a token without a URL part');
  assert.equal(serverUrlOfPoolToken('opa_abc.def'), undefined, 'not a pool token');
});
