// Which action a command line reaches, and with what: parsed by the real
// program, executed against a scripted API (no server, no sockets).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from './api-error.ts';
import type { Pool, Workspace } from './api-resources.ts';
import { fakeProcess, recordingTerminal, scriptedApi } from './cli-fakes.test-support.ts';
import { runCli } from './program.ts';

const workspace: Workspace = {
  id: 'ws-1',
  type: 'workspaces',
  attributes: {
    name: 'net',
    'auto-apply': false,
    'working-directory': '',
    engine: 'opentofu',
    'terraform-version': '1.9.0',
    'execution-mode': 'agent',
    locked: false,
    'created-at': '2025-01-01T00:00:00Z',
    'updated-at': '2026-01-01T00:00:00Z',
  },
};

const pool: Pool = { id: 'apool-1', type: 'agent-pools', attributes: { name: 'prod', 'created-at': '2025-01-01T00:00:00Z', 'agent-count': 2, 'organization-scoped': true } };

describe('run: the DIR form and the subcommands', () => {
  it('dispatches `run apply RUN_ID` to the apply subcommand', async () => {
    const { api, calls } = scriptedApi({ runAction: () => undefined });
    const code = await runCli(['run', 'apply', 'run-9'], fakeProcess(api).deps);
    assert.equal(code, 0);
    assert.deepEqual(calls, [['runAction', 'run-9', 'apply', undefined]]);
  });

  it('dispatches `run discard` and `run cancel --force` with their options', async () => {
    const { api, calls } = scriptedApi({ runAction: () => undefined });
    assert.equal(await runCli(['run', 'discard', 'run-9', '--comment', 'not today'], fakeProcess(api).deps), 0);
    assert.equal(await runCli(['run', 'cancel', 'run-9', '--force'], fakeProcess(api).deps), 0);
    assert.deepEqual(calls, [
      ['runAction', 'run-9', 'discard', 'not today'],
      ['runAction', 'run-9', 'force-cancel', undefined],
    ]);
  });

  it('gives `run list` its own --workspace', async () => {
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => workspace, listRuns: () => [] });
    const code = await runCli(['run', 'list', '--workspace', 'net'], fakeProcess(api).deps);
    assert.equal(code, 0);
    assert.deepEqual(calls, [
      ['getWorkspaceByName', 'default', 'net'],
      ['listRuns', 'ws-1'],
    ]);
  });

  it('sends `run DIR --workspace W` to the start action with DIR', async () => {
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => workspace });
    const fake = fakeProcess(api);
    const code = await runCli(['run', '/nonexistent/outpost-config', '--workspace', 'net'], fake.deps);
    // The action looked the workspace up, then refused the missing directory before any upload.
    assert.equal(code, 2);
    assert.deepEqual(calls, [['getWorkspaceByName', 'default', 'net']]);
    assert.match(fake.terminal.stderrText(), /\/nonexistent\/outpost-config does not exist/);
  });

  it('accepts the options of the DIR form before DIR', async () => {
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => workspace });
    const code = await runCli(['run', '--workspace', 'net', '--plan-only', '/nonexistent/x'], fakeProcess(api).deps);
    assert.equal(code, 2);
    assert.equal(calls.length, 1);
  });

  it('refuses --plan-only with --auto-approve as a usage error', async () => {
    const { api, calls } = scriptedApi({});
    const code = await runCli(['run', '.', '--workspace', 'net', '--plan-only', '--auto-approve'], fakeProcess(api).deps);
    assert.equal(code, 2);
    assert.equal(calls.length, 0);
  });
});

describe('other commands', () => {
  it('runs the process commands, including `agent run` next to `agent list`', async () => {
    const { api, calls } = scriptedApi({ listPools: () => [pool], listAgents: () => [] });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['agent', 'run'], fake.deps), 0);
    assert.equal(await runCli(['server'], fake.deps), 0);
    assert.equal(await runCli(['job'], fake.deps), 0);
    assert.equal(await runCli(['quickstart'], fake.deps), 0);
    assert.deepEqual(fake.processCalls, ['agent', 'server', 'job', 'quickstart']);
    assert.equal(calls.length, 0);
    assert.equal(await runCli(['agent', 'list'], fake.deps), 0);
    assert.deepEqual(calls, [['listPools', 'default'], ['listAgents', 'apool-1']]);
  });

  it('passes the exit code of a process command through', async () => {
    const fake = fakeProcess(scriptedApi({}).api);
    const deps = { ...fake.deps, processes: { ...fake.deps.processes, server: async () => 7 } };
    assert.equal(await runCli(['server'], deps), 7);
  });

  it('takes global options before or after the subcommand', async () => {
    const { api, calls } = scriptedApi({ listPools: () => [pool] });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['pool', 'list', '--json', '--org', 'acme'], fake.deps), 0);
    assert.deepEqual(JSON.parse(fake.terminal.stdoutText()), [pool]);
    assert.equal(await runCli(['--org', 'acme', 'pool', 'list'], fake.deps), 0);
    assert.deepEqual(calls, [['listPools', 'acme'], ['listPools', 'acme']]);
  });

  it('resolves a pool given by name for `workspace create --pool`', async () => {
    const { api, calls } = scriptedApi({ listPools: () => [pool], createWorkspace: () => workspace });
    const code = await runCli(['workspace', 'create', 'net', '--pool', 'prod', '--engine', 'terraform', '--auto-apply'], fakeProcess(api).deps);
    assert.equal(code, 0);
    assert.deepEqual(calls[1], [
      'createWorkspace',
      'default',
      { name: 'net', engine: 'terraform', 'terraform-version': undefined, 'working-directory': undefined, 'auto-apply': true, 'agent-pool-id': 'apool-1', 'execution-mode': undefined, 'tag-names': undefined },
    ]);
  });

  it('changes only the given settings with `workspace update`, and refuses an update of nothing', async () => {
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => workspace, updateWorkspace: () => workspace });
    assert.equal(await runCli(['workspace', 'update', 'net', '--auto-apply', 'no'], fakeProcess(api).deps), 0);
    assert.deepEqual(calls.at(-1), [
      'updateWorkspace',
      'ws-1',
      { engine: undefined, 'terraform-version': undefined, 'working-directory': undefined, 'auto-apply': false, 'agent-pool-id': undefined, 'execution-mode': undefined, 'tag-names': undefined },
    ]);
    assert.equal(await runCli(['workspace', 'update', 'net'], fakeProcess(api).deps), 2);
  });

  it('prints a new pool token alone on stdout, with the warning on stderr', async () => {
    const token = { id: 'at-1', type: 'authentication-tokens', attributes: { token: 'opp_secret_value_42', description: null, 'created-at': '', 'last-used-at': null, 'revoked-at': null } };
    const { api } = scriptedApi({ listPools: () => [pool], createPoolToken: () => token });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['pool', 'token', 'create', 'prod', '--description', 'ci'], fake.deps), 0);
    assert.equal(fake.terminal.stdoutText(), 'opp_secret_value_42\n');
    assert.match(fake.terminal.stderrText(), /will not be shown again/);
  });

  it('keeps a sensitive variable sensitive when `var set` updates it, reading `-` from stdin', async () => {
    const existing = { id: 'var-1', type: 'vars', attributes: { key: 'TOKEN', value: null, category: 'env', hcl: false, sensitive: true, description: null } };
    const { api, calls } = scriptedApi({ getWorkspaceByName: () => workspace, listVariables: () => [existing], updateVariable: () => existing });
    const terminal = recordingTerminal();
    terminal.stdin.end('s3cret\n');
    const fake = fakeProcess(api, terminal);
    assert.equal(await runCli(['var', 'set', 'TOKEN', '-', '--env', '--workspace', 'net'], fake.deps), 0);
    assert.deepEqual(calls.at(-1), [
      'updateVariable',
      'ws-1',
      'var-1',
      { key: 'TOKEN', value: 's3cret', category: 'env', hcl: false, sensitive: true, description: undefined },
    ]);
    assert.doesNotMatch(fake.terminal.stdoutText(), /s3cret/);
  });
});

describe('usage errors and API errors', () => {
  for (const args of [['run', 'list'], ['pool', 'create'], ['pool', 'list', '--bogus'], ['workspace', 'create', 'x', '--engine', 'pulumi'], ['nope']]) {
    it(`exits 2 for \`outpost ${args.join(' ')}\``, async () => {
      const fake = fakeProcess(scriptedApi({}).api);
      assert.equal(await runCli(args, fake.deps), 2);
      assert.match(fake.terminal.stderrText(), /error:/);
    });
  }

  it('exits 0 for --help and --version', async () => {
    const fake = fakeProcess(scriptedApi({}).api);
    assert.equal(await runCli(['--help'], fake.deps), 0);
    assert.equal(await runCli(['run', 'logs', '--help'], fake.deps), 0);
    assert.equal(await runCli(['--version'], fake.deps), 0);
    assert.match(fake.terminal.stdoutText(), /outpost run logs/);
  });

  it('exits 2 with a clear message when no token is configured', async () => {
    const fake = fakeProcess(scriptedApi({}).api);
    const code = await runCli(['pool', 'list'], { ...fake.deps, env: {} });
    assert.equal(code, 2);
    assert.match(fake.terminal.stderrText(), /^Error: no API token: set OUTPOST_TOKEN/);
  });

  it('exits 4 on an authentication failure, without echoing the token', async () => {
    const { api } = scriptedApi({
      listPools: () => {
        throw new ApiError({ status: 401, code: 'token_invalid', detail: 'token opa_test_token_0123456789 is not valid' });
      },
    });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['pool', 'list'], fake.deps), 4);
    const stderr = fake.terminal.stderrText();
    assert.match(stderr, /^Error: token <redacted> is not valid \[token_invalid\]/);
    assert.doesNotMatch(stderr, /opa_test_token/);
  });

  it('exits 3 when the API refuses the request', async () => {
    const { api } = scriptedApi({
      getWorkspaceByName: () => {
        throw new ApiError({ status: 404, code: 'not_found', detail: 'workspace nope not found' });
      },
    });
    const fake = fakeProcess(api);
    assert.equal(await runCli(['workspace', 'show', 'nope'], fake.deps), 3);
    assert.equal(fake.terminal.stderrText(), 'Error: no workspace named "nope" in organization "default" [not_found]\n');
  });
});
