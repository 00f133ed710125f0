// Provider URLs and repository names: what each kind of provider accepts,
// and the API, clone and commit URLs derived from them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiBaseOf, cloneUrlOf, commitUrlOf, sameRepository, validateRepositoryName, type VcsEndpoint } from './providers.ts';

const github: VcsEndpoint = { kind: 'github', url: 'https://github.com/' };
const enterprise: VcsEndpoint = { kind: 'github', url: 'https://ghe.example.com' };
const gitlab: VcsEndpoint = { kind: 'gitlab', url: 'https://gitlab.example.com' };
const gitea: VcsEndpoint = { kind: 'gitea', url: 'https://gitea.internal:3000' };
const bitbucket: VcsEndpoint = { kind: 'bitbucket-dc', url: 'https://bitbucket.example.com/' };
const git: VcsEndpoint = { kind: 'git', url: '' };

describe('apiBaseOf', () => {
  it('derives each provider\'s API base, an override winning', () => {
    assert.equal(apiBaseOf(github), 'https://api.github.com');
    assert.equal(apiBaseOf(enterprise), 'https://ghe.example.com/api/v3');
    assert.equal(apiBaseOf({ ...enterprise, apiUrl: 'https://ghe-api.example.com/api/v3/' }), 'https://ghe-api.example.com/api/v3');
    assert.equal(apiBaseOf(gitlab), 'https://gitlab.example.com/api/v4');
    assert.equal(apiBaseOf(gitea), 'https://gitea.internal:3000/api/v1');
    assert.equal(apiBaseOf(bitbucket), 'https://bitbucket.example.com/rest');
    assert.throws(() => apiBaseOf(git), { code: 'validation_failed', message: 'a plain git provider has no API' });
  });
});

describe('cloneUrlOf', () => {
  it('builds clone URLs from repository names', () => {
    assert.equal(cloneUrlOf(github, 'acme/infra'), 'https://github.com/acme/infra.git');
    assert.equal(cloneUrlOf(gitlab, 'platform/network/vpc'), 'https://gitlab.example.com/platform/network/vpc.git');
    assert.equal(cloneUrlOf(gitea, 'ops/.github'), 'https://gitea.internal:3000/ops/.github.git');
    assert.equal(cloneUrlOf(bitbucket, 'OPS/infra'), 'https://bitbucket.example.com/scm/OPS/infra.git');
    assert.equal(cloneUrlOf(git, 'ssh://git@git.example.com:2222/srv/infra.git'), 'ssh://git@git.example.com:2222/srv/infra.git');
    assert.equal(cloneUrlOf(git, 'git@git.example.com:srv/infra.git'), 'git@git.example.com:srv/infra.git');
  });

  it('refuses a name the provider cannot have', () => {
    assert.throws(() => cloneUrlOf(github, 'acme'), { code: 'validation_failed' });
    assert.throws(() => cloneUrlOf(git, 'file:///etc'), { code: 'validation_failed' });
  });
});

describe('validateRepositoryName', () => {
  it('accepts each provider\'s form', () => {
    assert.equal(validateRepositoryName('github', 'acme/infra-live_1.x'), undefined);
    assert.equal(validateRepositoryName('gitlab', 'a/b/c/d'), undefined);
    assert.equal(validateRepositoryName('bitbucket-dc', '~ADA/infra'), undefined);
    for (const url of ['https://git.example.com/infra.git', 'http://10.0.0.5:8080/r', 'ssh://git@host/srv/r.git', 'git@host:r.git']) {
      assert.equal(validateRepositoryName('git', url), undefined, url);
    }
  });

  it('refuses the wrong shape, traversal, whitespace, credentials and overlong names with a sentence', () => {
    const refused: [Parameters<typeof validateRepositoryName>[0], string, RegExp][] = [
      ['github', 'acme/infra/extra', /owner\/name/],
      ['gitea', 'acme', /owner\/name/],
      ['github', 'acme/infra.git', /\.git/],
      ['gitlab', 'infra', /group\/name/],
      ['bitbucket-dc', 'OPS/infra/x', /PROJECT\/slug/],
      ['github', 'acme/../infra', /\.\./],
      ['github', 'acme/in fra', /whitespace/],
      ['github', `acme/${'x'.repeat(260)}`, /255/],
      ['github', '', /empty/],
      ['git', 'file:///srv/repo.git', /full URL/],
      ['git', '-uhttps://x/y', /full URL/],
      ['git', 'ext::sh -c x', /whitespace|full URL/],
      ['git', 'https://user:token@git.example.com/r.git', /credentials/],
      ['git', 'https://git.example.com/', /no repository path/],
    ];
    for (const [kind, repository, expected] of refused) assert.match(validateRepositoryName(kind, repository) ?? '', expected, `${kind} ${repository}`);
  });
});

describe('sameRepository', () => {
  it('ignores case, a trailing .git and slashes', () => {
    assert.equal(sameRepository('github', 'Acme/Infra', 'acme/infra.git/'), true);
    assert.equal(sameRepository('gitlab', 'Group/Sub/Infra', 'group/sub/infra'), true);
    assert.equal(sameRepository('bitbucket-dc', 'OPS/infra', 'ops/INFRA'), true);
    assert.equal(sameRepository('github', 'acme/infra', 'acme/infra2'), false);
  });

  it('for a plain git URL, ignores the host\'s case but not the path\'s', () => {
    assert.equal(sameRepository('git', 'https://Git.Example.com/srv/infra.git', 'https://git.example.com/srv/infra/'), true);
    assert.equal(sameRepository('git', 'git@Host:srv/infra.git', 'git@host:srv/infra'), true);
    assert.equal(sameRepository('git', 'https://git.example.com/srv/Infra', 'https://git.example.com/srv/infra'), false);
  });
});

describe('commitUrlOf', () => {
  it('links to the commit in each forge, none for plain git', () => {
    const sha = 'a'.repeat(40);
    assert.equal(commitUrlOf(github, 'acme/infra', sha), `https://github.com/acme/infra/commit/${sha}`);
    assert.equal(commitUrlOf(gitea, 'acme/infra', sha), `https://gitea.internal:3000/acme/infra/commit/${sha}`);
    assert.equal(commitUrlOf(gitlab, 'g/s/infra', sha), `https://gitlab.example.com/g/s/infra/-/commit/${sha}`);
    assert.equal(commitUrlOf(bitbucket, 'OPS/infra', sha), `https://bitbucket.example.com/projects/OPS/repos/infra/commits/${sha}`);
    assert.equal(commitUrlOf(bitbucket, '~ADA/infra', sha), `https://bitbucket.example.com/users/ADA/repos/infra/commits/${sha}`);
    assert.equal(commitUrlOf(git, 'https://git.example.com/r.git', sha), null);
  });
});
