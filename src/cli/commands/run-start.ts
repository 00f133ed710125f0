// `outpost run [DIR]`: upload a configuration and run it, streaming the logs.
//
// Flow: pack DIR → configuration version → upload → run → follow the plan
// log → (the run applies on its own, or waits at `planned`: ask on a
// terminal, otherwise print the commands that settle it) → follow the apply
// log → one outcome line, and the outputs when the run applied.
// Ctrl-C once asks the server to cancel the run and keeps streaming so the
// user sees it stop; Ctrl-C twice leaves at once (exit 130).
import path from 'node:path';
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { OutpostApi } from '../api-client.ts';
import type { Run } from '../api-resources.ts';
import { apiContext, type Cli } from '../command-context.ts';
import { askForConfirmation } from '../confirmation-prompt.ts';
import { exitCodes, formatError } from '../exit-codes.ts';
import type { Output } from '../output.ts';
import { findWorkspace } from '../resource-lookup.ts';
import { followApply, followRun, waitForRun, type FollowOptions } from '../run-follow.ts';
import { confirmationHint, describeRunOutcome, exitCodeForRun, fetchCurrentOutputs, formatStateOutputs } from '../run-report.ts';
import { startRun } from '../run-start.ts';
import { formatBytes } from '../table.ts';

export const confirmationQuestion = "Apply these changes? Only 'yes' will be accepted: ";

interface RunStartFlags {
  readonly workspace: string;
  readonly autoApprove?: true;
  readonly planOnly?: true;
  readonly destroy?: true;
  readonly message?: string;
}

export function registerRunStartCommand(run: CommandUnknownOpts, cli: Cli): CommandUnknownOpts {
  return run
    .command('start', { isDefault: true })
    .description('Upload DIR and start a run (the default: `outpost run [DIR]` means `outpost run start [DIR]`)')
    .argument('[dir]', 'configuration directory to upload', '.')
    .requiredOption('--workspace <name>', 'workspace to run in')
    .addOption(new Option('--auto-approve', 'apply without asking, whatever the workspace\'s auto-apply setting'))
    .addOption(new Option('--plan-only', 'plan, show the changes, never apply').conflicts(['autoApprove', 'destroy']))
    .option('--destroy', 'plan the destruction of every resource in the state')
    .option('--message <text>', 'why this run was started (shown in `outpost run list`)')
    .action(async (dir, options, command) => {
      cli.exitCode = await startAndFollowRun(cli, command, dir, options);
    });
}

async function startAndFollowRun(cli: Cli, command: CommandUnknownOpts, dir: string, flags: RunStartFlags): Promise<number> {
  const { api, org, out } = apiContext(cli, command);
  const logs = new LogWriter(out);
  let runId: string | undefined;
  let interrupts = 0;
  const stopListening = cli.deps.onInterrupt(() => {
    interrupts += 1;
    if (runId === undefined || interrupts > 1) {
      out.note('\nInterrupted.');
      cli.deps.exit(exitCodes.interrupted);
      return;
    }
    out.note(`\nCanceling run ${runId}; the logs continue until it stops. Press Ctrl-C again to exit without waiting.`);
    api.runAction(runId, 'cancel').catch((error: unknown) => out.note(formatError(error, cli.secrets)));
  });
  try {
    const workspace = await findWorkspace(api, org, flags.workspace);
    const started = await startRun(api, {
      workspaceId: workspace.id,
      directory: dir,
      message: flags.message,
      isDestroy: flags.destroy === true ? true : undefined,
      planOnly: flags.planOnly === true ? true : undefined,
      autoApply: flags.autoApprove === true ? true : undefined,
    });
    runId = started.run.id;
    const size = formatBytes(started.upload.archiveBytes);
    out.note(`Uploaded ${path.resolve(dir)} (${size}) to workspace ${workspace.attributes.name}; run ${runId} is queued.`);
    if (started.run.attributes.status === 'pending') {
      // One state-changing run at a time per workspace: say why nothing happens yet.
      out.note(`It waits for earlier runs of the workspace to finish (outpost run list --workspace ${workspace.attributes.name}).`);
    }
    out.note('');
    let run = await followRun(api, runId, logs.followOptions);
    if (run.attributes.status === 'planned') {
      logs.endLine();
      run = await settlePlannedRun(cli, api, out, run, logs.followOptions);
    }
    logs.endLine();
    return await reportRun(api, out, run, workspace.id);
  } finally {
    stopListening();
  }
}

/** Asks on a terminal; otherwise leaves the run waiting and says how to settle it. */
async function settlePlannedRun(cli: Cli, api: OutpostApi, out: Output, run: Run, follow: FollowOptions): Promise<Run> {
  const { stdin, stdout, stderr } = cli.deps.terminal;
  if (out.json || stdin.isTTY !== true) return run;
  out.line(`\n${describeRunOutcome(run)}`);
  // With stdout redirected (`outpost run … > log`) the question must still reach the person typing.
  const promptStream = stdout.isTTY === true ? stdout : stderr;
  if (await askForConfirmation(stdin, promptStream, `\n${confirmationQuestion}`)) {
    await api.runAction(run.id, 'apply');
    out.line('');
    return followApply(api, run.id, follow);
  }
  await api.runAction(run.id, 'discard');
  return waitForRun(api, run.id, (current) => current.attributes.status !== 'planned');
}

/** The outcome line (and outputs of an applied run, or how to settle a planned one); returns the exit code. */
export async function reportRun(api: OutpostApi, out: Output, run: Run, workspaceId: string): Promise<number> {
  if (out.json) {
    out.data(run);
    if (run.attributes.status === 'planned') confirmationHint(run.id).forEach((line) => out.note(line));
    return exitCodeForRun(run);
  }
  out.line(`\n${describeRunOutcome(run)}`);
  if (run.attributes.status === 'planned') {
    confirmationHint(run.id).forEach((line) => out.line(line));
  }
  if (run.attributes.status === 'applied') {
    const outputs = formatStateOutputs(await fetchCurrentOutputs(api, workspaceId));
    if (outputs.length > 0) out.line(['', 'Outputs:', '', ...outputs].join('\n'));
  }
  return exitCodeForRun(run);
}

/** Run logs go to stdout, or to stderr with --json so stdout holds only the JSON. */
class LogWriter {
  readonly followOptions: FollowOptions;
  #endsWithNewline = true;

  constructor(out: Output) {
    const target = out.json ? out.terminal.stderr : out.terminal.stdout;
    this.followOptions = {
      write: (chunk) => {
        if (chunk.byteLength === 0) return;
        target.write(chunk);
        this.#endsWithNewline = chunk[chunk.byteLength - 1] === 0x0a;
      },
    };
  }

  /** Finishes a log that did not end with a newline, so the next message starts on its own line. */
  endLine(): void {
    if (!this.#endsWithNewline) this.followOptions.write(Buffer.from('\n'));
  }
}
