// `outpost vcs provider …`, `outpost workspace repo …`, `pool create --kind`
// and how runs from version control are shown: parsed by the real program,
// executed against a scripted API (no server, no sockets).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError } from './api-error.ts';
import type { IngressAttributes, Pool, VcsProvider, VcsTrigger, Workspace } from './api-resources.ts';
import { fakeProcess, fakeRun, recordingTerminal, scriptedApi } from './cli-fakes.test-support.ts';
import { runCli } from './program.ts';

const forgeToken = 'ghp_forge_token_value_0123456789';
const webhookSecret = 'opv_webhook_secret_value_0123456789';

function provider(overrides: Partial<VcsProvider['attributes']> = {}, poolId?: string): VcsProvider {
  return {
    id: 'vcs-1',
    type: 'vcs-providers',
    attributes: {
      name: 'github',
      kind: 'github',
      'http-url': 'https://github.com',
      'api-url': null,
      'has-token': true,
      'has-ssh-key': false,
      'poll-interval': 0,
      'webhook-url': poolId ? null : 'https://outpost.example.com/api/v2/vcs-providers/vcs-1/webhook',
      'created-at': '2025-01-01T00:00:00Z',
      ...overrides,
    },
    relationships: { 'agent-pool': { data: poolId ? { type: 'agent-pools', id: poolId } : null } },
  };
}

const workspace: Workspace = {
  id: 'ws-1',
  type: 'workspaces',
  attributes: {
    name: 'net',
    'auto-apply': false,
    'working-directory': 'network',
    engine: 'opentofu',
    'terraform-version': '1.9.0',
    'execution-mode': 'agent',
    locked: false,
    'vcs-repo': null,
    'created-at': '2025-01-01T00:00:00Z',
    'updated-at': '2026-01-01T00:00:00Z',
  },
};

const linked: Workspace = {
  ...workspace,
  attributes: {
    ...workspace.attributes,
    'vcs-repo': {
      identifier: 'acme/infra',
      branch: 'main',
      'vcs-provider-id': 'vcs-1',
      'oauth-token-id': 'vcs-1',
      'ingress-submodules': false,
      'tags-regex': null,
      'repository-http-url': 'https://github.com/acme/infra',
    },
    'trigger-patterns': ['network/**'],
    'speculative-enabled': true,
    'vcs-status': 'no agent of pool office-git is connected',
  },
};

function pool(kind: 'runner' | 'vcs', name = kind === 'vcs' ? 'office-git' : 'prod'): Pool {
  return { id: `apool-${kind}`, type: 'agent-pools', attributes: { name, kind, 'created-at': '2025-01-01T00:00:00Z', 'agent-count': 1, 'organization-scoped': true } };
}

const sha = '0123456789abcdef0123456789abcdef01234567';

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-vcs-commands-'));
  await writeFile(path.join(dir, 'token'), `${forgeToken}\n`);
  await writeFile(path.join(dir, 'deploy_key'), '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('outpost vcs provider create', () => {
  it('reads the token from stdin, never prints it, and prints the webhook secret once, alone on stdout', async () => {
    const { api, calls } = scriptedApi({ createVcsProvider: () => provider({ 'webhook-secret': webhookSecret }) });
    const terminal = recordingTerminal();
    terminal.stdin.end(`${forgeToken}\n`);
    const fake = fakeProcess(api, terminal);
    const code = await runCli(['vcs', 'provider', 'create', 'github', '--kind', 'github', '--http-url', 'https://github.com', '--token-stdin'], fake.deps);
    assert.equal(code, 0);
    assert.deepEqual(calls, [['createVcsProvider', 'default', { name: 'github', kind: 'github', 'http-url': 'https://github.com', token: forgeToken }]]);
    assert.equal(terminal.stdoutText(), `${webhookSecret}\n`);
    const stderr = terminal.stderrText();
    assert.match(stderr, /Webhook URL: +https:\/\/outpost\.example\.com\/api\/v2\/vcs-providers\/vcs-1\/webhook/);
    assert.match(stderr, /will not be shown again/);
    assert.match(stderr, /Paste the URL and the secret into the webhook settings/);
    assert.doesNotMatch(stderr, new RegExp(webhookSecret));
    assert.doesNotMatch(terminal.stdoutText() + stderr, new RegExp(forgeToken));
  });

  it('reads the token and an SSH key from files, and resolves a pool of kind vcs', async () => {
    const created = provider({ kind: 'git', name: 'internal', 'http-url': null, 'poll-interval': 60, 'webhook-secret': webhookSecret }, 'apool-vcs');
    const { api, calls } = scriptedApi({ listPools: () => [pool('runner'), pool('vcs')], createVcsProvider: () => created });
    const fake = fakeProcess(api);
    const args = ['vcs', 'provider', 'create', 'internal', '--kind', 'git', '--token-file', path.join(dir, 'token'), '--ssh-key-file', path.join(dir, 'deploy_key'), '--pool', 'office-git', '--poll-interval', '60'];
    assert.equal(await runCli(args, fake.deps), 0);
    assert.deepEqual(calls.at(-1), [
      'createVcsProvider',
      'default',
      {
        name: 'internal',
        kind: 'git',
        token: forgeToken,
        'ssh-key': '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
        'agent-pool-id': 'apool-vcs',
        'poll-interval': 60,
      },
    ]);
    // A plain git server sends no webhooks: no secret to hand anyone.
    assert.equal(fake.terminal.stdoutText(), 'Created VCS provider internal (vcs-1).\n');
    assert.doesNotMatch(fake.terminal.stderrText(), new RegExp(`${webhookSecret}|${forgeToken}`));
  });

  it('refuses a pool that runs jobs before creating anything (exit 2)', async () => {
    const { api, calls } = scriptedApi({ listPools: () => [pool('runner')] });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['vcs', 'provider', 'create', 'gl', '--kind', 'gitlab', '--http-url', 'https://gitlab.example.com', '--pool', 'prod'], fake.deps), 2);
    assert.deepEqual(calls, [['listPools', 'default']]);
    assert.match(fake.terminal.stderrText(), /pool of kind vcs/);
  });

  it('exits 3 when the API refuses it, without echoing the token', async () => {
    const { api } = scriptedApi({
      createVcsProvider: () => {
        throw new ApiError({ status: 422, code: 'validation_failed', detail: `token ${forgeToken} was refused by the forge` });
      },
    });
    const fake = fakeProcess(api);
    const code = await runCli(['vcs', 'provider', 'create', 'github', '--kind', 'github', '--http-url', 'https://github.com', '--token-file', path.join(dir, 'token')], fake.deps);
    assert.equal(code, 3);
    assert.equal(fake.terminal.stderrText(), 'Error: token <redacted> was refused by the forge [validation_failed]\n');
  });

  it('takes no token as an argument value, and needs --kind (exit 2)', async () => {
    for (const args of [
      ['vcs', 'provider', 'create', 'github', '--kind', 'github', '--token-stdin', forgeToken],
      ['vcs', 'provider', 'create', 'github', '--http-url', 'https://github.com'],
      ['vcs', 'provider', 'create', 'github', '--kind', 'svn'],
      ['vcs', 'provider', 'create', 'github', '--kind', 'github', '--token-stdin', '--token-file', 'x'],
    ]) {
      const { api, calls } = scriptedApi({});
      assert.equal(await runCli(args, fakeProcess(api).deps), 2, args.join(' '));
      assert.equal(calls.length, 0);
    }
  });

  it('refuses a token file that cannot be read (exit 2)', async () => {
    const { api, calls } = scriptedApi({});
    const fake = fakeProcess(api);
    assert.equal(await runCli(['vcs', 'provider', 'create', 'github', '--kind', 'github', '--token-file', path.join(dir, 'missing')], fake.deps), 2);
    assert.equal(calls.length, 0);
    assert.match(fake.terminal.stderrText(), /--token-file .*missing: cannot read it \(ENOENT\)/);
  });
});

describe('outpost vcs provider: the other commands', () => {
  it('rotates the secret with the overlap in seconds, printing the new secret alone on stdout', async () => {
    const { api, calls } = scriptedApi({ listVcsProviders: () => [provider()], rotateVcsWebhookSecret: () => provider({ 'webhook-secret': webhookSecret }) });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['vcs', 'provider', 'rotate-secret', 'github', '--overlap', '10m'], fake.deps), 0);
    assert.deepEqual(calls, [['listVcsProviders', 'default'], ['rotateVcsWebhookSecret', 'vcs-1', 600]]);
    assert.equal(fake.terminal.stdoutText(), `${webhookSecret}\n`);
    assert.match(fake.terminal.stderrText(), /old one is accepted for 10m more/);
  });

  it('rotates with a one-hour overlap by default, and refuses a bad duration', async () => {
    const { api, calls } = scriptedApi({ getVcsProvider: () => provider(), rotateVcsWebhookSecret: () => provider({ 'webhook-secret': webhookSecret }) });
    assert.equal(await runCli(['vcs', 'provider', 'rotate-secret', 'vcs-1'], fakeProcess(api).deps), 0);
    assert.deepEqual(calls.at(-1), ['rotateVcsWebhookSecret', 'vcs-1', 3600]);
    assert.equal(await runCli(['vcs', 'provider', 'rotate-secret', 'vcs-1', '--overlap', 'soon'], fakeProcess(api).deps), 2);
  });

  it('updates only the settings given, --no-pool included, and refuses an update of nothing', async () => {
    const { api, calls } = scriptedApi({ listVcsProviders: () => [provider()], updateVcsProvider: () => provider() });
    assert.equal(await runCli(['vcs', 'provider', 'update', 'github', '--no-pool', '--poll-interval', '300'], fakeProcess(api).deps), 0);
    assert.deepEqual(calls.at(-1), ['updateVcsProvider', 'vcs-1', { 'agent-pool-id': null, 'poll-interval': 300 }]);
    assert.equal(await runCli(['vcs', 'provider', 'update', 'github'], fakeProcess(api).deps), 2);
  });

  it('lists providers with the pool that reaches them, and deletes one by name', async () => {
    const { api, calls } = scriptedApi({
      listVcsProviders: () => [provider(), provider({ name: 'internal', kind: 'git', 'http-url': null, 'poll-interval': 60 }, 'apool-vcs')],
      listPools: () => [pool('vcs')],
      deleteVcsProvider: () => undefined,
    });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['vcs', 'provider', 'list'], fake.deps), 0);
    assert.equal(
      fake.terminal.stdoutText(),
      'vcs-1\tgithub\tgithub\thttps://github.com\tserver\toff\t2025-01-01 00:00:00Z\nvcs-1\tinternal\tgit\t-\tpool office-git\tevery 1m\t2025-01-01 00:00:00Z\n',
    );
    assert.equal(await runCli(['vcs', 'provider', 'delete', 'github'], fake.deps), 0);
    assert.deepEqual(calls.at(-1), ['deleteVcsProvider', 'vcs-1']);
  });

  it('shows deliveries and a provider, never a secret', async () => {
    const delivery = { id: 'vcsd-1', type: 'vcs-deliveries', attributes: { 'delivery-id': 'abc-123', event: 'push', outcome: 'queued 1 run', 'received-at': '2025-01-02T00:00:00Z' } };
    const { api, calls } = scriptedApi({ getVcsProvider: () => provider(), listVcsDeliveries: () => [delivery] });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['vcs', 'provider', 'deliveries', 'vcs-1', '--limit', '5'], fake.deps), 0);
    assert.deepEqual(calls.at(-1), ['listVcsDeliveries', 'vcs-1', 5]);
    assert.match(fake.terminal.stdoutText(), /^vcsd-1\tabc-123\tpush\tqueued 1 run\t2025-01-02 00:00:00Z\n$/);
    assert.equal(await runCli(['vcs', 'provider', 'show', 'vcs-1'], fake.deps), 0);
    assert.match(fake.terminal.stdoutText(), /Token: +set/);
    assert.equal(await runCli(['vcs', 'provider', 'deliveries', 'vcs-1', '--limit', '500'], fake.deps), 2);
  });
});

describe('outpost workspace repo', () => {
  it('sends the link, the trigger patterns and the switches as one PATCH', async () => {
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => workspace, listVcsProviders: () => [provider()], updateWorkspace: () => linked });
    const fake = fakeProcess(api);
    const args = ['workspace', 'repo', 'set', 'net', '--provider', 'github', '--repository', 'acme/infra', '--branch', 'main', '--trigger', 'network/**', '--trigger', 'modules/**', '--tags-regex', '^v[0-9]+', '--submodules', '--no-speculative'];
    assert.equal(await runCli(args, fake.deps), 0);
    assert.deepEqual(calls.at(-1), [
      'updateWorkspace',
      'ws-1',
      {
        'vcs-repo': { identifier: 'acme/infra', 'vcs-provider-id': 'vcs-1', branch: 'main', 'ingress-submodules': true, 'tags-regex': '^v[0-9]+' },
        'trigger-patterns': ['network/**', 'modules/**'],
        'speculative-enabled': false,
      },
    ]);
    assert.equal(fake.terminal.stdoutText(), 'Linked workspace net to acme/infra (branch main) on github.\n');
    assert.match(fake.terminal.stderrText(), /waits: no agent of pool office-git is connected/);
  });

  it('leaves out what is not given, and clears patterns and the tags regex on request', async () => {
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => workspace, getVcsProvider: () => provider(), updateWorkspace: () => linked });
    assert.equal(await runCli(['workspace', 'repo', 'set', 'net', '--provider', 'vcs-1', '--repository', 'acme/infra'], fakeProcess(api).deps), 0);
    assert.deepEqual(calls.at(-1), ['updateWorkspace', 'ws-1', { 'vcs-repo': { identifier: 'acme/infra', 'vcs-provider-id': 'vcs-1' } }]);
    assert.equal(await runCli(['workspace', 'repo', 'set', 'net', '--provider', 'vcs-1', '--repository', 'acme/infra', '--no-triggers', '--no-tags-regex'], fakeProcess(api).deps), 0);
    assert.deepEqual(calls.at(-1), ['updateWorkspace', 'ws-1', { 'vcs-repo': { identifier: 'acme/infra', 'vcs-provider-id': 'vcs-1', 'tags-regex': null }, 'trigger-patterns': [] }]);
  });

  it('needs --provider and --repository (exit 2), and exits 3 when the API refuses the link', async () => {
    const { api } = scriptedApi({
      getWorkspaceByName: () => workspace,
      listVcsProviders: () => [provider()],
      updateWorkspace: () => {
        throw new ApiError({ status: 422, code: 'validation_failed', detail: 'vcs-repo identifier: the repository is "owner/name"' });
      },
    });
    assert.equal(await runCli(['workspace', 'repo', 'set', 'net', '--repository', 'acme/infra'], fakeProcess(api).deps), 2);
    const fake = fakeProcess(api);
    assert.equal(await runCli(['workspace', 'repo', 'set', 'net', '--provider', 'github', '--repository', 'acme'], fake.deps), 3);
    assert.equal(fake.terminal.stderrText(), 'Error: vcs-repo identifier: the repository is "owner/name" [validation_failed]\n');
  });

  it('shows the link, its status and the last triggers', async () => {
    const trigger: VcsTrigger = {
      id: 'vcst-1',
      type: 'vcs-triggers',
      attributes: { kind: 'push', 'commit-sha': sha, ref: 'refs/heads/main', status: 'queued', reason: null, 'created-at': '2025-01-02T00:00:00Z' },
      relationships: { run: { data: { type: 'runs', id: 'run-7' } } },
    };
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => linked, listVcsTriggers: () => [trigger], getVcsProvider: () => provider() });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['workspace', 'repo', 'show', 'net', '--limit', '3'], fake.deps), 0);
    assert.deepEqual(calls[1], ['listVcsTriggers', 'ws-1', 3]);
    const stdout = fake.terminal.stdoutText();
    assert.match(stdout, /Repository: +https:\/\/github\.com\/acme\/infra/);
    assert.match(stdout, /Status: +no agent of pool office-git is connected/);
    assert.match(stdout, /Trigger patterns: +network\/\*\*/);
    assert.match(stdout, /^0123456789ab\tpush\trefs\/heads\/main\tqueued\t-\trun-7\t2025-01-02 00:00:00Z$/m);
  });

  it('removes the link with vcs-repo null', async () => {
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => linked, updateWorkspace: () => workspace });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['workspace', 'repo', 'remove', 'net'], fake.deps), 0);
    assert.deepEqual(calls.at(-1), ['updateWorkspace', 'ws-1', { 'vcs-repo': null }]);
    assert.equal(fake.terminal.stdoutText(), 'Unlinked workspace net from acme/infra.\n');
  });
});

describe('pools of kind vcs', () => {
  it('creates a pool of the kind given (runner by default) and lists the kind', async () => {
    const { api, calls } = scriptedApi({ createPool: () => pool('vcs'), listPools: () => [pool('vcs'), pool('runner')] });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['pool', 'create', 'office-git', '--kind', 'vcs'], fake.deps), 0);
    assert.equal(await runCli(['pool', 'create', 'prod'], fake.deps), 0);
    assert.equal(await runCli(['pool', 'create', 'x', '--kind', 'lambda'], fake.deps), 2);
    assert.deepEqual(calls, [['createPool', 'default', 'office-git', 'vcs'], ['createPool', 'default', 'prod', 'runner']]);
    assert.equal(await runCli(['pool', 'list'], fake.deps), 0);
    assert.match(fake.terminal.stdoutText(), /^apool-vcs\toffice-git\tvcs\t1\t/m);
    assert.match(fake.terminal.stdoutText(), /^apool-runner\tprod\trunner\t1\t/m);
  });
});

describe('runs from version control', () => {
  const ingress: IngressAttributes = {
    identifier: 'acme/infra',
    'commit-sha': sha,
    'commit-message': 'Add the NAT gateway\n\nThe long story.',
    'commit-author': 'alice',
    'commit-url': `https://github.com/acme/infra/commit/${sha}`,
    branch: 'main',
    tag: null,
    'is-pull-request': false,
    'pull-request-number': null,
    'pull-request-url': null,
    'pull-request-title': null,
    'sender-username': 'alice',
  };

  it('shows the commit of a run in `run show` and `run list`', async () => {
    const pullRequest = { ...ingress, 'is-pull-request': true, 'pull-request-number': 42, 'pull-request-url': 'https://github.com/acme/infra/pull/42' };
    const { api } = scriptedApi({
      getRun: () => fakeRun('applied', { source: 'tfe-configuration-version', 'ingress-attributes': ingress }),
      getWorkspaceByName: () => linked,
      listRuns: () => [fakeRun('planned_and_finished', { 'plan-only': true, 'ingress-attributes': pullRequest }), { ...fakeRun('applied', { 'created-at': '2024-01-01T00:00:00Z' }), id: 'run-0' }],
    });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['run', 'show', 'run-1'], fake.deps), 0);
    assert.match(fake.terminal.stdoutText(), /^Commit: +0123456789ab \(main\) by alice: Add the NAT gateway$/m);
    assert.match(fake.terminal.stdoutText(), /^Commit URL: +https:\/\/github\.com\/acme\/infra\/commit\//m);
    assert.equal(await runCli(['run', 'list', '--workspace', 'net'], fake.deps), 0);
    assert.match(fake.terminal.stdoutText(), /^run-1\tplanned_and_finished\t.*\t0123456789ab \(PR #42\) by alice: Add the NAT gateway$/m);
    assert.match(fake.terminal.stdoutText(), /^run-0\tapplied\t.*\ttest$/m);
  });

  it('names the commit before following a run\'s logs, on stderr', async () => {
    const { api } = scriptedApi({
      getRun: () => fakeRun('applied', { 'ingress-attributes': { ...ingress, branch: null, tag: 'v1.2.0' } }),
      readLog: () => undefined,
      getPhase: () => ({ id: 'plan-1', type: 'plans', attributes: { status: 'finished' } }),
    });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['run', 'logs', 'run-1', '--follow'], fake.deps), 0);
    assert.match(fake.terminal.stderrText(), /^Run run-1 of commit 0123456789ab \(tag v1\.2\.0\) by alice: Add the NAT gateway\n/);
    assert.equal(fake.terminal.stdoutText(), '');
  });
});

describe('--help', () => {
  const commands = [
    ['vcs'],
    ['vcs', 'provider'],
    ['vcs', 'provider', 'create'],
    ['vcs', 'provider', 'list'],
    ['vcs', 'provider', 'show'],
    ['vcs', 'provider', 'update'],
    ['vcs', 'provider', 'delete'],
    ['vcs', 'provider', 'rotate-secret'],
    ['vcs', 'provider', 'deliveries'],
    ['workspace', 'repo'],
    ['workspace', 'repo', 'set'],
    ['workspace', 'repo', 'show'],
    ['workspace', 'repo', 'remove'],
    ['pool', 'create'],
  ];
  for (const command of commands) {
    it(`explains \`outpost ${command.join(' ')}\` with an example, and exits 0`, async () => {
      const { api, calls } = scriptedApi({});
      const fake = fakeProcess(api);
      assert.equal(await runCli([...command, '--help'], fake.deps), 0);
      const help = fake.terminal.stdoutText();
      assert.match(help, new RegExp(`^Usage: outpost ${command.join(' ')} `));
      assert.match(help, /\nExamples?:\n {2}outpost /);
      assert.equal(calls.length, 0);
    });
  }
});
