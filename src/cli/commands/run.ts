// `outpost run …`: start runs (run-start.ts) and act on existing ones.
//
// `run` is both a command (`outpost run [DIR]`) and a group (`outpost run
// apply RUN_ID`). The DIR form is a default subcommand, `start`, rather
// than an action on `run` itself: an action would make `run` own options such
// as --workspace, and commander would then consume them before `run list`
// could see its own. A first argument naming a subcommand (apply, discard,
// cancel, show, logs, list, start, help) is that subcommand; to upload a
// directory with such a name, write it as a path: `outpost run ./logs`.
import { Help, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { RunAction } from '../api-client.ts';
import { relatedId, type IngressAttributes, type Run } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { findWorkspace } from '../resource-lookup.ts';
import { followRun, readRunLogs } from '../run-follow.ts';
import { confirmationHint, describeCommit, describeRunOutcome, exitCodeForRun, summarizeChanges } from '../run-report.ts';
import { formatTimestamp } from '../table.ts';
import { registerRunStartCommand } from './run-start.ts';

export function registerRunCommands(program: CommandUnknownOpts, cli: Cli): void {
  const run = program
    .command('run')
    .description('Upload a configuration and run it, or manage runs')
    .usage('[DIR] --workspace <name> [options]\n       outpost run <command> [options]');
  const start = registerRunStartCommand(run, cli);
  registerRunActionCommands(run, cli);
  registerRunInspectionCommands(run, cli);

  // `outpost run --help` describes the DIR form too: its arguments and
  // options are those of `start`, listed along with the subcommands.
  run.configureHelp({
    showGlobalOptions: true,
    visibleArguments: (command) => new Help().visibleArguments(command === run ? start : command),
    visibleOptions: (command) => new Help().visibleOptions(command === run ? start : command),
  });
  run.addHelpText('after', `
Examples:
  outpost run --workspace network                   upload ., plan, ask before applying
  outpost run ./infra --workspace network --auto-approve
  outpost run --workspace network --plan-only       a speculative plan
  outpost run --workspace network --destroy
  outpost run apply run-8kPzq2Wd                    confirm a planned run
  outpost run logs run-8kPzq2Wd --follow

Exit codes: 0 applied, planned with no changes, plan-only, or waiting for
confirmation outside a terminal; 1 errored, canceled or discarded;
2 usage; 3 API error or server unreachable; 4 authentication; 130 Ctrl-C twice.`);
}

const actionDescriptions: Readonly<Record<Exclude<RunAction, 'force-cancel'>, [string, string]>> = {
  apply: ['Confirm a planned run: its apply is queued', 'Confirmed run {id}; its apply is queued.'],
  discard: ['Discard a planned run: it will not be applied', 'Discarded run {id}.'],
  cancel: ['Cancel a run: interrupt its plan or apply', 'Requested cancellation of run {id}.'],
};

function registerRunActionCommands(run: CommandUnknownOpts, cli: Cli): void {
  for (const action of ['apply', 'discard'] as const) {
    const [description, done] = actionDescriptions[action];
    run
      .command(action)
      .description(description)
      .argument('<run-id>', 'run id (run-…)')
      .option('--comment <text>', 'recorded with the action')
      .addHelpText('after', `\nExample:\n  outpost run ${action} run-8kPzq2Wd`)
      .action(async (runId, options, command) => {
        const { api, out } = apiContext(cli, command);
        await api.runAction(runId, action, options.comment);
        out.result({ id: runId, type: 'runs' }, () => out.line(done.replace('{id}', runId)));
        if (action === 'apply' && !out.json) out.note(`Follow it with: outpost run logs ${runId} --follow`);
      });
  }

  const [cancelDescription, cancelDone] = actionDescriptions.cancel;
  run
    .command('cancel')
    .description(cancelDescription)
    .argument('<run-id>', 'run id (run-…)')
    .option('--force', 'force-cancel: stop the engine at once, for a run a plain cancel did not stop')
    .option('--comment <text>', 'recorded with the action')
    .addHelpText('after', `
A cancel interrupts the engine the way Ctrl-C does, so it can stop cleanly and
save state. --force kills it after a short grace period; use it only when a
cancel did not work.

Examples:
  outpost run cancel run-8kPzq2Wd
  outpost run cancel run-8kPzq2Wd --force`)
    .action(async (runId, options, command) => {
      const { api, out } = apiContext(cli, command);
      await api.runAction(runId, options.force === true ? 'force-cancel' : 'cancel', options.comment);
      out.result({ id: runId, type: 'runs' }, () => out.line(cancelDone.replace('{id}', runId)));
    });
}

function registerRunInspectionCommands(run: CommandUnknownOpts, cli: Cli): void {
  run
    .command('show')
    .description('Show a run: status, changes, error')
    .argument('<run-id>', 'run id (run-…)')
    .action(async (runId, _options, command) => {
      const { api, out } = apiContext(cli, command);
      const found = await api.getRun(runId);
      out.result(found, () => out.fields(runFields(found)));
    });

  run
    .command('logs')
    .description('Print the logs of a run (plan, then apply)')
    .argument('<run-id>', 'run id (run-…)')
    .option('--follow', 'keep streaming until the run is final or waits for confirmation; exit code as for `outpost run`')
    .addHelpText('after', '\nExamples:\n  outpost run logs run-8kPzq2Wd\n  outpost run logs run-8kPzq2Wd --follow')
    .action(async (runId, options, command) => {
      const { api, out } = apiContext(cli, command);
      const write = (chunk: Uint8Array): void => void cli.deps.terminal.stdout.write(chunk);
      if (options.follow !== true) {
        await readRunLogs(api, await api.getRun(runId), write);
        return;
      }
      // What is being watched, for a run version control started (on stderr: stdout carries the logs).
      const commit = describeCommit((await api.getRun(runId)).attributes['ingress-attributes']);
      if (commit !== undefined) out.note(`Run ${runId} of commit ${commit}\n`);
      const settled = await followRun(api, runId, { write });
      out.note(`\n${describeRunOutcome(settled)}`);
      if (settled.attributes.status === 'planned') confirmationHint(runId).forEach((line) => out.note(line));
      cli.exitCode = exitCodeForRun(settled);
    });

  run
    .command('list')
    .description('List the runs of a workspace, newest first')
    .requiredOption('--workspace <name>', 'workspace whose runs to list')
    .addHelpText('after', '\nExample:\n  outpost run list --workspace network')
    .action(async (options, command) => {
      const { api, org, out } = apiContext(cli, command);
      const workspace = await findWorkspace(api, org, options.workspace);
      const runs = await api.listRuns(workspace.id);
      out.result(runs, () =>
        out.table(
          ['ID', 'STATUS', 'CHANGES', 'KIND', 'CREATED', 'MESSAGE'],
          newestFirst(runs).map((r) => [r.id, r.attributes.status, summarizeChanges(r), runKind(r), formatTimestamp(r.attributes['created-at']), messageOf(r)]),
        ),
      );
    });
}

function newestFirst(runs: readonly Run[]): Run[] {
  return [...runs].sort((x, y) => y.attributes['created-at'].localeCompare(x.attributes['created-at']));
}

// A run version control started is named by its commit; the server's
// message for it only repeats part of that.
function messageOf(run: Run): string {
  return describeCommit(run.attributes['ingress-attributes']) ?? run.attributes.message ?? '';
}

function runKind(run: Run): string {
  if (run.attributes['plan-only']) return 'plan-only';
  return run.attributes['is-destroy'] ? 'destroy' : 'apply';
}

function runFields(run: Run): [string, string][] {
  const a = run.attributes;
  const fields: [string, string][] = [
    ['ID', run.id],
    ['Status', a.status],
    ['Workspace', relatedId(run, 'workspace') ?? '-'],
    ['Kind', runKind(run)],
    ['Auto-apply', a['auto-apply'] ? 'yes' : 'no'],
    ['Changes', summarizeChanges(run)],
    ['Message', a.message ?? ''],
    ...commitFields(a['ingress-attributes']),
    ['Configuration', relatedId(run, 'configuration-version') ?? '-'],
    ['Plan', relatedId(run, 'plan') ?? '-'],
    ['Apply', relatedId(run, 'apply') ?? '-'],
    ['Created', formatTimestamp(a['created-at'])],
  ];
  if (a['error-message']) fields.push(['Error', a['error-code'] ? `${a['error-message']} [${a['error-code']}]` : a['error-message']]);
  return fields;
}

function commitFields(ingress: IngressAttributes | null | undefined): [string, string][] {
  const commit = describeCommit(ingress);
  if (commit === undefined || !ingress) return [];
  const fields: [string, string][] = [['Commit', commit]];
  if (ingress['is-pull-request'] && ingress['pull-request-url']) fields.push(['Pull request', ingress['pull-request-url']]);
  else if (ingress['commit-url']) fields.push(['Commit URL', ingress['commit-url']]);
  return fields;
}
