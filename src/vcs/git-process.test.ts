// The hardened git environment: what a session passes to git, and how
// credentials are kept out of what git prints.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { GitSession, failureKindOf, remoteScheme, scrub, secretsOf } from './git-process.ts';

function configOf(env: Readonly<Record<string, string>>): Map<string, string> {
  const config = new Map<string, string>();
  for (let index = 0; index < Number(env.GIT_CONFIG_COUNT); index += 1) config.set(env[`GIT_CONFIG_KEY_${index}`]!, env[`GIT_CONFIG_VALUE_${index}`]!);
  return config;
}

describe('GitSession', () => {
  it('runs git without the user\'s config, prompts or repository, and removes its directory', async () => {
    process.env.GIT_DIR = '/somewhere/else';
    process.env.GIT_CONFIG_PARAMETERS = '\'core.sshcommand\'=\'touch /tmp/x\'';
    const session = await GitSession.open({ url: 'https://github.com/acme/infra.git', kind: 'github', credentials: { token: 'ghp_abcdefgh' } });
    delete process.env.GIT_DIR;
    delete process.env.GIT_CONFIG_PARAMETERS;
    const env = session.env;
    assert.equal(env.GIT_DIR, undefined);
    assert.equal(env.GIT_CONFIG_PARAMETERS, undefined);
    assert.equal(env.GIT_TERMINAL_PROMPT, '0');
    assert.equal(env.GIT_CONFIG_NOSYSTEM, '1');
    assert.ok(env.HOME?.startsWith(session.directory));
    const config = configOf(env);
    assert.equal(config.get('protocol.allow'), 'never');
    assert.equal(config.get('protocol.https.allow'), 'always');
    assert.equal(config.has('protocol.http.allow'), false);
    assert.equal(config.has('protocol.file.allow'), false);
    assert.equal(config.get('http.https://github.com/.extraHeader'), `Authorization: Basic ${Buffer.from('x-access-token:ghp_abcdefgh').toString('base64')}`);
    assert.ok(!Object.values(env).some((value) => value.includes('ghp_abcdefgh')), 'the raw token is in no variable');
    const output = await session.gitResult(['rev-parse', '--git-dir'], session.directory);
    assert.notEqual(output.exitCode, 0, 'no repository is found above the session\'s directory');
    await session.dispose();
    assert.equal(existsSync(session.directory), false);
  });

  it('allows plain http and file only when the remote itself uses them', async () => {
    for (const [url, allowed] of [['http://git.internal/x.git', 'http'], ['file:///srv/x.git', 'file']] as const) {
      const session = await GitSession.open({ url, kind: 'git', credentials: {} });
      assert.equal(configOf(session.env).get(`protocol.${allowed}.allow`), 'always');
      await session.dispose();
    }
  });

  it('sends no Authorization header to an SSH remote, and a Bearer token to Bitbucket Data Center', async () => {
    const ssh = await GitSession.open({ url: 'git@github.com:acme/infra.git', kind: 'github', credentials: { token: 'ghp_abcdefgh' } });
    assert.ok(![...configOf(ssh.env).keys()].some((key) => key.endsWith('extraHeader')));
    assert.match(ssh.env.GIT_SSH_COMMAND ?? '', /^ssh -F \/dev\/null .*StrictHostKeyChecking=accept-new/);
    await ssh.dispose();
    const bitbucket = await GitSession.open({ url: 'https://bitbucket.example.com/scm/ops/infra.git', kind: 'bitbucket-dc', credentials: { token: 'BBDC-abcdefgh' } });
    assert.equal(configOf(bitbucket.env).get('http.https://bitbucket.example.com/.extraHeader'), 'Authorization: Bearer BBDC-abcdefgh');
    await bitbucket.dispose();
  });
});

describe('scrub', () => {
  it('replaces the token, its Basic form and any user:password in a URL', () => {
    const credentials = { token: 'glpat-abcdefgh', username: 'deploy' };
    const secrets = secretsOf('gitlab', credentials);
    const encoded = Buffer.from('deploy:glpat-abcdefgh').toString('base64');
    const text = `token glpat-abcdefgh, header Basic ${encoded}, url https://deploy:glpat-abcdefgh@host/x, other https://u:p@h/y`;
    const scrubbed = scrub(text, secrets);
    assert.ok(!scrubbed.includes('glpat-abcdefgh'));
    assert.ok(!scrubbed.includes(encoded));
    assert.ok(!scrubbed.includes('u:p@'));
  });
});

describe('remoteScheme and failureKindOf', () => {
  it('reads the scheme, scp-like remotes being ssh', () => {
    assert.equal(remoteScheme('HTTPS://x/y'), 'https');
    assert.equal(remoteScheme('git@github.com:a/b.git'), 'ssh');
    assert.equal(remoteScheme('ssh://git@host/x'), 'ssh');
  });

  it('tells authentication, missing repository, missing commit and host key failures apart', () => {
    assert.equal(failureKindOf('remote: Invalid username or password.\nfatal: Authentication failed for \'https://github.com/a/b.git/\''), 'authentication');
    assert.equal(failureKindOf('git@github.com: Permission denied (publickey).'), 'authentication');
    assert.equal(failureKindOf('remote: Repository not found.\nfatal: repository \'https://github.com/a/b.git/\' not found'), 'repository');
    assert.equal(failureKindOf('fatal: remote error: upload-pack: not our ref 0123'), 'commit');
    assert.equal(failureKindOf('Host key verification failed.'), 'host-key');
    assert.equal(failureKindOf('fatal: unable to access: Could not resolve host: x'), null);
  });
});
