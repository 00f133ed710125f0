// The whole operation as the agent runs it: a real `outpost job` process,
// with the real OpenTofu binary, against an in-memory control plane.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create as createTar } from 'tar';
import { tofuBinary } from '../../test/support/toolchain.ts';
import type { JobSpec, JobVariable } from '../protocol/agent-api.ts';
import { agentPaths } from '../protocol/agent-api.ts';
import { startFakeControlPlane, type FakeControlPlane } from './fake-control-plane.test-support.ts';

const token = 'opj_job_token_that_must_never_leak_0123456789';
const entry = path.join(import.meta.dirname, 'entry.ts');

const greetingConfig = `
variable "greeting" {}
resource "terraform_data" "x" {
  input = var.greeting
}
output "greeting" {
  value = terraform_data.x.output
}
`;

let scratch: string;
let plane: FakeControlPlane;
before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'outpost-job-'));
  plane = await startFakeControlPlane(token);
});
after(async () => {
  await plane.close();
  await rm(scratch, { recursive: true, force: true });
});

const terraformVariable = (key: string, value: string, sensitive = false): JobVariable => ({ key, value, category: 'terraform', hcl: false, sensitive });

function jobSpec(kind: 'plan' | 'apply', variables: JobVariable[], overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    job_id: `job-${kind}`,
    run_id: 'run-1',
    kind,
    is_destroy: false,
    plan_only: false,
    workspace: { id: 'ws-1', name: 'prod', working_directory: 'envs/prod' },
    engine: { name: 'opentofu', version: '1.10.10' },
    variables,
    ...overrides,
  };
}

/** Packs `files` (relative path -> content) as the configuration version. */
async function uploadConfiguration(files: Record<string, string>): Promise<void> {
  const source = await mkdtemp(path.join(scratch, 'source-'));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(source, name)), { recursive: true });
    await writeFile(path.join(source, name), content);
  }
  const archive = `${source}.tar.gz`;
  await createTar({ gzip: true, file: archive, cwd: source, portable: true }, ['.']);
  plane.configuration = await readFile(archive);
}

interface JobRun {
  code: number | null;
  output: string;
  workdir: string;
}

/** Runs `outpost job` as the agent's local driver would; `onOutput` may signal the process. */
async function runJob(spec: JobSpec, onOutput?: (output: string, pid: number) => void): Promise<JobRun> {
  plane.spec = spec;
  const workdir = await mkdtemp(path.join(scratch, 'job-'));
  const child = spawn(process.execPath, [entry], {
    cwd: workdir,
    env: {
      ...process.env,
      OUTPOST_JOB_SERVER_URL: plane.url,
      OUTPOST_JOB_TOKEN: token,
      OUTPOST_JOB_WORKDIR: workdir,
      OUTPOST_JOB_ENGINE_PATH: tofuBinary(),
      TF_CLI_CONFIG_FILE: '/nonexistent/terraformrc',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    onOutput?.(output, child.pid ?? 0);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
  return { code, output, workdir };
}

/** Read through a function: TypeScript would keep the narrowing of an earlier `plane.state = undefined`. */
function storedState(): Buffer | undefined {
  return plane.state;
}

/** Every file under `dir` whose content contains `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if ((await readFile(file)).includes(needle)) found.push(file);
  }
  return found;
}

describe('outpost job with OpenTofu', { timeout: 120_000 }, () => {
  it('plans, then applies the saved plan with state kept by the control plane', async () => {
    await uploadConfiguration({ 'envs/prod/main.tf': greetingConfig, 'README.md': 'not part of the working directory\n' });
    plane.results.length = 0;
    plane.state = undefined;

    const plan = await runJob(jobSpec('plan', [terraformVariable('greeting', 'hello')]));
    assert.equal(plan.code, 0, plan.output);
    assert.deepEqual(plane.results, [{ outcome: 'succeeded', has_changes: true, resource_additions: 1, resource_changes: 0, resource_destructions: 0 }]);
    assert.match(plan.output, /^Outpost: fetching job specification$/m);
    assert.match(plan.output, /^Outpost: fetching configuration version$/m);
    assert.match(plan.output, /^Outpost: Plan: 1 to add, 0 to change, 0 to destroy\.$/m);
    assert.ok(plane.plan !== undefined && plane.plan.length > 0, 'the plan file was uploaded');
    const planJson = JSON.parse(plane.planJson?.toString('utf8') ?? '{}') as { resource_changes: unknown[] };
    assert.equal(planJson.resource_changes.length, 1);
    assert.equal(plane.lock, undefined, 'the plan released the state lock');
    assert.ok(plane.requests.includes(`POST ${agentPaths.jobStateLock}`), 'the plan locked the state');
    // The token reaches the engine through its environment only.
    assert.ok(!plan.output.includes(token));
    assert.deepEqual(await filesContaining(plan.workdir, token), []);
    assert.ok(!plane.plan.includes(token), 'the plan file does not hold the token');

    const apply = await runJob(jobSpec('apply', [terraformVariable('greeting', 'hello')]));
    assert.equal(apply.code, 0, apply.output);
    assert.deepEqual(plane.results[1], { outcome: 'succeeded', has_changes: true, resource_additions: 1, resource_changes: 0, resource_destructions: 0 });
    assert.match(apply.output, /Apply complete! Resources: 1 added, 0 changed, 0 destroyed\./);
    const state = JSON.parse(storedState()?.toString('utf8') ?? '{}') as { outputs: Record<string, { value: unknown }> };
    assert.equal(state.outputs.greeting?.value, 'hello');
    assert.equal(plane.lock, undefined, 'the apply released the state lock');
    assert.deepEqual(await filesContaining(apply.workdir, token), []);
  });

  it('never shows a sensitive value in the log, and a plan-only plan does not lock', async () => {
    const secret = 'correct-horse-battery-staple';
    await uploadConfiguration({
      'envs/prod/main.tf': `${greetingConfig}\nvariable "password" {}\noutput "password" {\n  value = var.password\n}\n`,
    });
    plane.results.length = 0;
    const locksBefore = plane.requests.filter((request) => request === `POST ${agentPaths.jobStateLock}`).length;
    const variables = [terraformVariable('greeting', 'hi'), terraformVariable('password', secret, true)];
    const plan = await runJob(jobSpec('plan', variables, { plan_only: true }));
    assert.equal(plan.code, 0, plan.output);
    assert.ok(!plan.output.includes(secret), plan.output);
    assert.match(plan.output, /password = "\*\*\*"/);
    assert.equal(plane.requests.filter((request) => request === `POST ${agentPaths.jobStateLock}`).length, locksBefore);
  });

  it('fails with engine_failed on invalid HCL, with the engine\'s error in the log', async () => {
    await uploadConfiguration({ 'envs/prod/main.tf': 'resource "terraform_data" {{{\n' });
    plane.results.length = 0;
    const plan = await runJob(jobSpec('plan', []));
    assert.equal(plan.code, 1, plan.output);
    assert.deepEqual(plane.results, [{ outcome: 'failed', error: { code: 'engine_failed', message: 'tofu init exited with code 1' } }]);
    assert.match(plan.output, /Error: Missing name for resource/);
  });

  it('fails with working_directory_missing when the directory is not in the configuration', async () => {
    await uploadConfiguration({ 'main.tf': greetingConfig });
    plane.results.length = 0;
    const plan = await runJob(jobSpec('plan', [], { workspace: { id: 'ws-1', name: 'prod', working_directory: 'envs/staging' } }));
    assert.equal(plan.code, 1, plan.output);
    assert.equal(plane.results[0]?.error?.code, 'working_directory_missing');
    assert.match(plan.output, /^Error: the working directory "envs\/staging" is not in the configuration \[working_directory_missing\]$/m);
  });

  it('cancels between steps: no engine runs after a cancel', async () => {
    await uploadConfiguration({ 'envs/prod/main.tf': greetingConfig });
    plane.results.length = 0;
    let signaled = false;
    const plan = await runJob(jobSpec('plan', []), (output, pid) => {
      if (!signaled && output.includes('Outpost: fetching job specification')) {
        signaled = true;
        process.kill(pid, 'SIGINT');
      }
    });
    assert.equal(plan.code, 2, plan.output);
    assert.deepEqual(plane.results, [{ outcome: 'canceled' }]);
    assert.doesNotMatch(plan.output, /running tofu/);
  });

  it('cancels a running apply: the engine stops gracefully and releases the lock', async () => {
    const slowConfig = greetingConfig.replace('input = var.greeting', 'input = var.greeting\n  provisioner "local-exec" {\n    command = "sleep 60"\n  }');
    await uploadConfiguration({ 'envs/prod/main.tf': slowConfig });
    plane.results.length = 0;
    plane.state = undefined;
    const variables = [terraformVariable('greeting', 'slow')];
    assert.equal((await runJob(jobSpec('plan', variables))).code, 0);

    let signaled = false;
    const started = Date.now();
    const apply = await runJob(jobSpec('apply', variables), (output, pid) => {
      if (!signaled && output.includes("Provisioning with 'local-exec'")) {
        signaled = true;
        process.kill(pid, 'SIGTERM');
      }
    });
    assert.ok(signaled, apply.output);
    assert.equal(apply.code, 2, apply.output);
    assert.deepEqual(plane.results.at(-1), { outcome: 'canceled' });
    assert.match(apply.output, /Interrupt received/);
    assert.equal(plane.lock, undefined, 'the engine released the state lock');
    assert.ok(Date.now() - started < 30_000, 'the engine did not wait for the provisioner to finish');
  });
});
