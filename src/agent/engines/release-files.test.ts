import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidEngineVersion, redactUrl, releaseFiles, releasePlatform } from './release-files.ts';

const linux = { os: 'linux', arch: 'amd64' };

describe('releaseFiles', () => {
  it('builds the official OpenTofu URLs', () => {
    assert.deepEqual(releaseFiles('opentofu', '1.10.10', linux), {
      zipName: 'tofu_1.10.10_linux_amd64.zip',
      zipUrl: 'https://github.com/opentofu/opentofu/releases/download/v1.10.10/tofu_1.10.10_linux_amd64.zip',
      sumsName: 'tofu_1.10.10_SHA256SUMS',
      sumsUrl: 'https://github.com/opentofu/opentofu/releases/download/v1.10.10/tofu_1.10.10_SHA256SUMS',
    });
  });

  it('builds the official Terraform URLs', () => {
    assert.deepEqual(releaseFiles('terraform', '1.5.7', { os: 'darwin', arch: 'arm64' }), {
      zipName: 'terraform_1.5.7_darwin_arm64.zip',
      zipUrl: 'https://releases.hashicorp.com/terraform/1.5.7/terraform_1.5.7_darwin_arm64.zip',
      sumsName: 'terraform_1.5.7_SHA256SUMS',
      sumsUrl: 'https://releases.hashicorp.com/terraform/1.5.7/terraform_1.5.7_SHA256SUMS',
    });
  });

  it('puts the official file names under <mirror>/<engine>/<version>/', () => {
    const tofu = releaseFiles('opentofu', '1.11.0-rc1', linux, 'https://mirror.example/engines/');
    assert.equal(tofu.zipUrl, 'https://mirror.example/engines/opentofu/1.11.0-rc1/tofu_1.11.0-rc1_linux_amd64.zip');
    assert.equal(tofu.sumsUrl, 'https://mirror.example/engines/opentofu/1.11.0-rc1/tofu_1.11.0-rc1_SHA256SUMS');
    const terraform = releaseFiles('terraform', '1.5.7', linux, 'https://mirror.example');
    assert.equal(terraform.zipUrl, 'https://mirror.example/terraform/1.5.7/terraform_1.5.7_linux_amd64.zip');
  });
});

describe('isValidEngineVersion', () => {
  it('accepts release and pre-release versions', () => {
    for (const version of ['1.10.10', '0.12.31', '1.11.0-rc1', '1.6.0-alpha5', '1.7.0-beta.2']) {
      assert.ok(isValidEngineVersion(version), version);
    }
  });

  it('refuses anything that could change a path or a URL', () => {
    const unsafe = ['', 'latest', '1.10', 'v1.10.10', '../1.10.10', '1.10.10/..', '1.10.10-..', '1.10.10-a/b'];
    const odd = ['1.10.10+meta', '1.10.10 ', '1.10.10%2f', '1.10.10-a\\b', '1.10.10\n'];
    for (const version of [...unsafe, ...odd]) {
      assert.ok(!isValidEngineVersion(version), JSON.stringify(version));
    }
  });
});

describe('releasePlatform', () => {
  it('names architectures as the releases do', () => {
    assert.deepEqual(releasePlatform('linux', 'x64'), { os: 'linux', arch: 'amd64' });
    assert.deepEqual(releasePlatform('darwin', 'arm64'), { os: 'darwin', arch: 'arm64' });
  });
});

describe('redactUrl', () => {
  it('removes user name and password', () => {
    assert.equal(redactUrl('https://bob:hunter2@mirror.example/x'), 'https://mirror.example/x');
    assert.equal(redactUrl('https://mirror.example/x'), 'https://mirror.example/x');
    assert.equal(redactUrl('failed for //bob:hunter2@mirror.example/x'), 'failed for //mirror.example/x');
  });
});
