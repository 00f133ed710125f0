import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RunLog } from './run-log.ts';
import { SecretMasker } from './secret-masking.ts';

/** Feeds `chunks` through a masker and returns everything it printed. */
function stream(secrets: string[], chunks: string[]): string {
  const masker = new SecretMasker(secrets);
  return chunks.map((chunk) => masker.push(chunk)).join('') + masker.flush();
}

describe('SecretMasker', () => {
  it('masks a secret inside one chunk', () => {
    assert.equal(stream(['hunter2!'], ['password = "hunter2!"\n']), 'password = "***"\n');
  });

  it('masks a secret split across chunks, at every split point', () => {
    const text = 'before s3cr3t-value after s3cr3t-value\n';
    for (let cut = 0; cut <= text.length; cut += 1) {
      assert.equal(stream(['s3cr3t-value'], [text.slice(0, cut), text.slice(cut)]), 'before *** after ***\n', `cut at ${cut}`);
    }
  });

  it('masks a secret spread over many one-character chunks', () => {
    assert.equal(stream(['abcdef'], [...'xxabcdefyy']), 'xx***yy');
  });

  it('never prints a prefix of a secret before it knows how it continues', () => {
    const masker = new SecretMasker(['abcdef']);
    const first = masker.push('x abc');
    assert.doesNotMatch(first, /a/);
    assert.equal(first + masker.push('def y') + masker.flush(), 'x *** y');
  });

  it('masks the longer of two overlapping secrets as a whole', () => {
    assert.equal(stream(['pass', 'password1'], ['my password1 and pass']), 'my *** and ***');
  });

  it('leaves very short and empty values alone', () => {
    assert.equal(stream(['', 'on', 'abc'], ['on abc on']), 'on abc on');
  });

  it('passes text through unchanged without secrets', () => {
    const masker = new SecretMasker([]);
    assert.equal(masker.push('partial'), 'partial');
    assert.equal(masker.flush(), '');
  });
});

describe('RunLog', () => {
  it('masks engine output and its own lines, and closes lines the engine left open', () => {
    let printed = '';
    const log = new RunLog((text) => {
      printed += text;
    });
    log.step('running tofu plan');
    log.maskSecrets(['topsecret']);
    log.engineOutput('value = "tops');
    log.engineOutput('ecret"');
    log.endEngineOutput();
    log.error('failed with topsecret', 'internal');
    assert.equal(printed, 'Outpost: running tofu plan\nvalue = "***"\nError: failed with *** [internal]\n');
  });
});
