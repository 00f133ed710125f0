// The named steps of a plan job and of an apply job (docs/architecture.md,
// "The job operation"). Each step is one line in the run log ("Outpost:
// <title>") followed by what it prints; job-operation.ts runs them in order
// and checks for a cancel in between.
import { rm } from 'node:fs/promises';
import type { Env } from '../config/settings.ts';
import type { JobResult, JobSpec, PlanOptions } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';
import { extractConfiguration } from './archive-extraction.ts';
import { formatByteSize } from './byte-size.ts';
import { CanceledError, type Cancellation } from './cancellation.ts';
import { ApplyCompleteWatcher, describeChanges, summarizePlan, type PlanSummary } from './change-summary.ts';
import type { JobConfig } from './config.ts';
import { buildEngineEnvironment } from './engine-environment.ts';
import { describeEngineExit, runEngine, type EngineExit, type OutputListener } from './engine-process.ts';
import type { JobApi } from './job-api.ts';
import type { RunLog } from './run-log.ts';
import { providerEnvironment, providerInstallationOf, writeCliConfig } from './provider-installation.ts';
import { adoptHandedOverDirectory, jobFiles, markApplyMayFollow, savedPlanTarget } from './plan-workdir.ts';
import { resolveWorkingDirectory, writeBackendOverride } from './working-directory.ts';

export interface JobStep {
  readonly title: string;
  readonly run: () => Promise<void>;
  /** Asked when the step's turn comes: true leaves it out (not run, not logged). */
  readonly skip?: () => boolean;
}

export interface StepContext {
  readonly config: JobConfig;
  readonly inherited: Env;
  readonly spec: JobSpec;
  readonly api: JobApi;
  readonly log: RunLog;
  readonly cancellation: Cancellation;
}

export interface JobPlanOfSteps {
  readonly steps: readonly JobStep[];
  /** The result to report once every step succeeded. */
  readonly result: () => JobResult;
}

/** The command name users know, for log lines and messages. */
export function engineCommand(spec: JobSpec): string {
  return spec.engine.name === 'opentofu' ? 'tofu' : 'terraform';
}

export function stepsFor(context: StepContext): JobPlanOfSteps {
  return context.spec.kind === 'plan' ? planJobSteps(context) : applyJobSteps(context);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Fetch, prepare and init: the part plan and apply jobs share. */
class PreparedWorkspace {
  workingDir = '';
  env: Record<string, string> = {};
  readonly #context: StepContext;

  constructor(context: StepContext) {
    this.#context = context;
  }

  steps(): { fetch: JobStep; prepare: JobStep; init: JobStep } {
    const { config, api, log, cancellation, spec } = this.#context;
    const files = jobFiles(config.workdir);
    const engine = engineCommand(spec);
    return {
      fetch: {
        title: 'fetching configuration version',
        run: async () => {
          const maxBytes = config.maxArchiveMb * 1024 * 1024;
          await api.downloadConfiguration(files.archive, maxBytes, cancellation.signal);
          const summary = await extractConfiguration(files.archive, files.configDir, { maxBytes });
          await rm(files.archive, { force: true });
          log.info(`extracted ${plural(summary.files, 'file')} and ${plural(summary.links, 'link')}, ${formatByteSize(summary.bytes)}`);
        },
      },
      prepare: {
        title: 'preparing working directory',
        run: async () => {
          this.workingDir = await resolveWorkingDirectory(files.configDir, spec.workspace.working_directory);
          await writeBackendOverride(this.workingDir);
          const providers = providerInstallationOf(config);
          const built = buildEngineEnvironment({
            inherited: this.#context.inherited,
            serverUrl: config.serverUrl,
            token: config.token,
            cliConfigFile: await writeCliConfig(config.workdir, providers),
            variables: spec.variables,
          });
          this.env = { ...built.env, ...(await providerEnvironment(config.workdir, providers, built.env)) };
          for (const name of built.overridden) log.info(`workspace variable ${name} is ignored: Outpost sets it for the run`);
          const shown = spec.workspace.working_directory === '' ? 'the configuration root' : JSON.stringify(spec.workspace.working_directory);
          const installing = providers.mirrorUrl === undefined ? `the engine downloads them` : `from the agent's provider cache`;
          log.info(`working directory: ${shown}; state backend: Outpost; providers: ${installing}`);
        },
      },
      init: {
        title: `running ${engine} init`,
        run: async () => {
          await this.engine('init', ['init', '-input=false', '-no-color']);
        },
      },
    };
  }

  /** Runs an engine subcommand in the working directory; a failure or a cancel ends the job. */
  async engine(subcommand: string, args: string[], options: { captureStdout?: boolean; onOutput?: OutputListener } = {}): Promise<EngineExit> {
    const { config, log, cancellation, spec } = this.#context;
    const output: OutputListener = (text) => {
      options.onOutput?.(text);
      log.engineOutput(text);
    };
    const invocation = { enginePath: config.enginePath, args, cwd: this.workingDir, env: this.env, captureStdout: options.captureStdout ?? false };
    const exit = await runEngine(invocation, output, cancellation);
    log.endEngineOutput();
    if (exit.code === 0) return exit;
    if (exit.interrupted || cancellation.requested) throw new CanceledError();
    throw new OutpostError('engine_failed', describeEngineExit(engineCommand(spec), subcommand, exit));
  }
}

/** The engine's flags for a run's plan options; the addresses were checked by the server (no option, no line break) and go as single arguments. */
export function planOptionArgs(options: PlanOptions | undefined): string[] {
  if (!options) return [];
  const args: string[] = [];
  if (!options.refresh) args.push('-refresh=false');
  if (options.refresh_only) args.push('-refresh-only');
  for (const target of options.targets) args.push(`-target=${target}`);
  for (const address of options.replace) args.push(`-replace=${address}`);
  return args;
}

function planJobSteps(context: StepContext): JobPlanOfSteps {
  const { config, api, log, spec } = context;
  const files = jobFiles(config.workdir);
  const engine = engineCommand(spec);
  const workspace = new PreparedWorkspace(context);
  let planJson: Buffer = Buffer.alloc(0);
  let summary: PlanSummary | undefined;
  const { fetch, prepare, init } = workspace.steps();
  const steps: JobStep[] = [
    fetch,
    prepare,
    init,
    {
      title: `running ${engine} plan${spec.is_destroy ? ' -destroy' : ''}`,
      run: async () => {
        const args = ['plan', '-input=false', '-no-color', `-out=${files.plan}`];
        if (spec.is_destroy) args.push('-destroy');
        args.push(...planOptionArgs(spec.plan_options));
        // A plan-only run never applies, so it must not hold up other runs with the state lock.
        if (spec.plan_only) args.push('-lock=false');
        await workspace.engine('plan', args);
      },
    },
    {
      title: `uploading the plan and reading it (${engine} show -json)`,
      run: async () => {
        // Side by side: the upload waits on the network, show on the engine.
        // Both are settled before a failure of either ends the step, so no engine outlives it.
        const [shown, uploaded] = await Promise.allSettled([
          workspace.engine('show', ['show', '-json', files.plan], { captureStdout: true }),
          api.uploadPlan(files.plan),
        ]);
        if (shown.status === 'rejected') throw shown.reason;
        if (uploaded.status === 'rejected') throw uploaded.reason;
        planJson = shown.value.stdout;
        let parsed: unknown;
        try {
          parsed = JSON.parse(planJson.toString('utf8'));
        } catch (error) {
          throw new OutpostError('engine_failed', `${engine} show -json did not print JSON: ${(error as Error).message}`);
        }
        summary = summarizePlan(parsed);
        await api.uploadPlanJson(planJson);
        log.info(summary.hasChanges ? describeChanges(summary) : 'No changes.');
        if (summary.hasChanges && !spec.plan_only) await markApplyMayFollow(config.workdir);
      },
    },
  ];
  return {
    steps,
    result: () => ({
      outcome: 'succeeded',
      has_changes: summary?.hasChanges ?? false,
      resource_additions: summary?.additions ?? 0,
      resource_changes: summary?.changes ?? 0,
      resource_destructions: summary?.destructions ?? 0,
    }),
  };
}

function applyJobSteps(context: StepContext): JobPlanOfSteps {
  const { config, api, log, cancellation, spec } = context;
  const files = jobFiles(config.workdir);
  const engine = engineCommand(spec);
  const workspace = new PreparedWorkspace(context);
  const watcher = new ApplyCompleteWatcher();
  const { fetch, prepare, init } = workspace.steps();
  /** The plan job's directory, handed over by this agent, holds the plan the control plane has. */
  let reusing = false;
  const steps: JobStep[] = [
    {
      title: 'downloading the saved plan',
      run: async () => {
        const target = await savedPlanTarget(config.workdir);
        const bytes = await api.downloadPlan(target.file, cancellation.signal);
        log.info(`plan file: ${formatByteSize(bytes)}`);
        if (!target.handedOver) return;
        reusing = await adoptHandedOverDirectory(config.workdir, target.file);
        log.info(
          reusing
            ? `this agent ran the plan and kept its working directory, which holds the same plan: the configuration and ${engine} init are reused`
            : 'the working directory this agent kept from the plan holds a different plan: starting afresh',
        );
      },
    },
    { ...fetch, skip: () => reusing },
    prepare,
    { ...init, skip: () => reusing },
    {
      title: `running ${engine} apply`,
      run: async () => {
        await workspace.engine('apply', ['apply', '-input=false', '-no-color', files.plan], { onOutput: (text) => watcher.push(text) });
        watcher.end();
      },
    },
  ];
  return {
    steps,
    result: () => {
      const counts = watcher.counts;
      if (counts === undefined) return { outcome: 'succeeded' };
      return {
        outcome: 'succeeded',
        has_changes: counts.additions + counts.changes + counts.destructions > 0,
        resource_additions: counts.additions,
        resource_changes: counts.changes,
        resource_destructions: counts.destructions,
      };
    },
  };
}
