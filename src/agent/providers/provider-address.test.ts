// Provider addresses come from request paths of the mirror and become file
// names in the cache and upstream URLs, so the parser is the first line of
// defence against path traversal: every hostile spelling must be refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidPlatform, isValidVersion, matchesPattern, packageFileName, parseProviderAddress } from './provider-address.ts';

describe('parseProviderAddress', () => {
  it('accepts registry names as the engines write them, and lowercases them', () => {
    assert.deepEqual(parseProviderAddress('registry.opentofu.org', 'hashicorp', 'aws'), {
      hostname: 'registry.opentofu.org',
      namespace: 'hashicorp',
      type: 'aws',
    });
    assert.deepEqual(parseProviderAddress('Registry.Terraform.IO', 'Outpost-Test', 'Simple_V6'), {
      hostname: 'registry.terraform.io',
      namespace: 'outpost-test',
      type: 'simple_v6',
    });
    // Private registries may listen on a port.
    assert.equal(parseProviderAddress('localhost:8443', 'ns', 'type')?.hostname, 'localhost:8443');
    assert.equal(parseProviderAddress('a', '0', 'x')?.type, 'x');
  });

  const rejected: [string, string, string, string][] = [
    ['".." as namespace', 'registry.opentofu.org', '..', 'aws'],
    ['".." as type', 'registry.opentofu.org', 'hashicorp', '..'],
    ['".." as hostname', '..', 'hashicorp', 'aws'],
    ['a slash in the namespace', 'registry.opentofu.org', 'a/b', 'aws'],
    ['a backslash in the type', 'registry.opentofu.org', 'hashicorp', 'a\\b'],
    ['an encoded slash', 'registry.opentofu.org', 'a%2fb', 'aws'],
    ['an encoded dot-dot', 'registry.opentofu.org', '%2e%2e', 'aws'],
    ['an empty namespace', 'registry.opentofu.org', '', 'aws'],
    ['an empty type', 'registry.opentofu.org', 'hashicorp', ''],
    ['an empty hostname', '', 'hashicorp', 'aws'],
    ['an overlong namespace', 'registry.opentofu.org', 'a'.repeat(65), 'aws'],
    ['an overlong hostname', `${'a'.repeat(63)}.`.repeat(4) + 'org', 'hashicorp', 'aws'],
    ['an overlong hostname label', `${'a'.repeat(64)}.org`, 'hashicorp', 'aws'],
    ['an empty hostname label', 'registry..opentofu.org', 'hashicorp', 'aws'],
    ['a hostname label starting with a dash', '-registry.opentofu.org', 'hashicorp', 'aws'],
    ['a hostname label ending with a dash', 'registry-.opentofu.org', 'hashicorp', 'aws'],
    ['a trailing dot in the hostname', 'registry.opentofu.org.', 'hashicorp', 'aws'],
    ['a hostname with a path', 'registry.opentofu.org/x', 'hashicorp', 'aws'],
    ['a hostname with credentials', 'user@registry.opentofu.org', 'hashicorp', 'aws'],
    ['a hostname with an overlong port', 'localhost:123456', 'hashicorp', 'aws'],
    ['a name ending with a dash', 'registry.opentofu.org', 'hashicorp-', 'aws'],
    ['a name with a dot', 'registry.opentofu.org', 'hashi.corp', 'aws'],
    ['a name with a NUL byte', 'registry.opentofu.org', 'hashicorp\0', 'aws'],
    ['a name with a newline', 'registry.opentofu.org', 'hashicorp\n', 'aws'],
  ];
  for (const [what, hostname, namespace, type] of rejected) {
    it(`rejects ${what}`, () => {
      assert.equal(parseProviderAddress(hostname, namespace, type), undefined);
    });
  }

  it('accepts names at the length limits', () => {
    assert.ok(parseProviderAddress('registry.opentofu.org', 'a'.repeat(64), 'aws'));
    assert.ok(parseProviderAddress(`${'a'.repeat(63)}.org`, 'hashicorp', 'aws'));
  });
});

describe('isValidVersion', () => {
  it('accepts semantic versions with pre-release and build parts', () => {
    for (const version of ['1.0.0', '0.0.1', '10.20.30', '1.0.0-beta1', '1.0.0-rc.1', '1.0.0+build.5', '1.0.0-Alpha']) {
      assert.ok(isValidVersion(version), version);
    }
  });

  it('rejects anything that could name another file', () => {
    for (const version of ['', '1', '1.0', '1.0.0.0', 'v1.0.0', '../../x', '1.0.0/..', '1.0.0-../x', '1.0.0%2f', '1.0.0 ', '1.0.0-']) {
      assert.equal(isValidVersion(version), false, version);
    }
  });
});

describe('isValidPlatform and packageFileName', () => {
  it('accepts os_arch and rejects other shapes', () => {
    assert.ok(isValidPlatform('linux_amd64'));
    assert.ok(isValidPlatform('darwin_arm64'));
    for (const platform of ['linux', 'linux_', '_amd64', 'linux_amd64_x', 'linux/amd64', '../x_y', 'Linux_amd64']) {
      assert.equal(isValidPlatform(platform), false, platform);
    }
  });

  it('names the package as the official release does', () => {
    const key = { hostname: 'registry.opentofu.org', namespace: 'hashicorp', type: 'aws', version: '5.1.0', platform: 'linux_arm64' };
    assert.equal(packageFileName(key), 'terraform-provider-aws_5.1.0_linux_arm64.zip');
  });
});

describe('matchesPattern', () => {
  const address = { hostname: 'registry.opentofu.org', namespace: 'hashicorp', type: 'aws' };

  it('matches exact names, case-insensitively', () => {
    assert.ok(matchesPattern('registry.opentofu.org/hashicorp/aws', address));
    assert.ok(matchesPattern('Registry.OpenTofu.org/HashiCorp/AWS', address));
  });

  it('treats "*" as any one part', () => {
    assert.ok(matchesPattern('registry.opentofu.org/hashicorp/*', address));
    assert.ok(matchesPattern('registry.opentofu.org/*/*', address));
    assert.ok(matchesPattern('*/*/*', address));
    assert.ok(matchesPattern('*/hashicorp/aws', address));
  });

  it('does not match other names or other shapes', () => {
    assert.equal(matchesPattern('registry.opentofu.org/hashicorp/google', address), false);
    assert.equal(matchesPattern('registry.terraform.io/*/*', address), false);
    assert.equal(matchesPattern('registry.opentofu.org/hashi*/aws', address), false, '"*" is a whole part, not a glob');
    assert.equal(matchesPattern('registry.opentofu.org/*', address), false);
    assert.equal(matchesPattern('*', address), false);
    assert.equal(matchesPattern('registry.opentofu.org/hashicorp/aws/extra', address), false);
    assert.equal(matchesPattern('', address), false);
  });
});
