import assert from 'node:assert/strict';
import { it } from 'node:test';
import { expectedSha256 } from './checksums.ts';

const a = 'a'.repeat(64);
const b = 'B'.repeat(64);

it('finds the line for exactly the named file', () => {
  const sums = `${a}  tofu_1.10.10_darwin_amd64.zip\r\n${b} *tofu_1.10.10_linux_amd64.zip\n\n`;
  assert.equal(expectedSha256(sums, 'tofu_1.10.10_linux_amd64.zip'), 'b'.repeat(64));
  assert.equal(expectedSha256(sums, 'tofu_1.10.10_darwin_amd64.zip'), a);
  assert.equal(expectedSha256(sums, 'tofu_1.10.10_linux_amd64'), undefined);
  assert.equal(expectedSha256(sums, 'linux_amd64.zip'), undefined);
});

it('ignores lines that are not checksums', () => {
  assert.equal(expectedSha256(`abc  tofu.zip\n${a.slice(1)}  tofu.zip\n`, 'tofu.zip'), undefined);
});
