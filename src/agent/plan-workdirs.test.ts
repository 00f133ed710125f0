// PlanWorkdirs on a real filesystem: what is kept, for how long, how many,
// and what an agent start leaves.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { PlanWorkdirs } from './plan-workdirs.ts';

const root = await mkdtemp(path.join(os.tmpdir(), 'plan-workdirs-'));
after(() => rm(root, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });

let clock = 0;
let kept: string;
let jobs: string;

beforeEach(async () => {
  await rm(root, { recursive: true, force: true });
  kept = path.join(root, 'plan-workdirs');
  jobs = path.join(root, 'jobs');
  await mkdir(jobs, { recursive: true });
  clock = 1_000_000;
});

async function started(options: { ttlMs?: number; maxEntries?: number } = {}): Promise<PlanWorkdirs> {
  const workdirs = new PlanWorkdirs({ dir: kept, ttlMs: options.ttlMs ?? 60_000, maxEntries: options.maxEntries ?? 2, logger, now: () => clock });
  await workdirs.start();
  after(() => workdirs.stop());
  return workdirs;
}

/** A finished plan job's directory; `marked` as the job operation marks a plan that may be applied. */
async function planJobDir(jobId: string, marked = true): Promise<string> {
  const dir = path.join(jobs, jobId);
  await mkdir(path.join(dir, 'config', '.terraform'), { recursive: true });
  await writeFile(path.join(dir, 'plan.tfplan'), `plan of ${jobId}`);
  if (marked) await writeFile(path.join(dir, '.outpost-apply-may-follow'), '');
  return dir;
}

describe('PlanWorkdirs', () => {
  it('hands a marked plan directory to the apply of the same run, once', async () => {
    const workdirs = await started();
    await workdirs.keep('run-1', await planJobDir('job-plan'));
    const applyDir = path.join(jobs, 'job-apply');

    assert.equal(await workdirs.handOver('run-other', applyDir), false);
    assert.equal(await workdirs.handOver('run-1', applyDir), true);
    assert.equal(await readFile(path.join(applyDir, 'plan.tfplan'), 'utf8'), 'plan of job-plan');
    assert.deepEqual(await readdir(kept), []);
    assert.equal(await workdirs.handOver('run-1', path.join(jobs, 'job-apply-2')), false);
  });

  it('keeps nothing the plan job did not mark, and leaves it for the sandbox cleanup', async () => {
    const workdirs = await started();
    const dir = await planJobDir('job-plan', false);
    await workdirs.keep('run-1', dir);
    assert.deepEqual(workdirs.keptRuns(), []);
    assert.deepEqual(await readdir(dir), ['config', 'plan.tfplan']);
  });

  it('drops the oldest beyond maxEntries', async () => {
    const workdirs = await started({ maxEntries: 2 });
    for (const n of [1, 2, 3]) await workdirs.keep(`run-${n}`, await planJobDir(`job-${n}`));
    assert.deepEqual(workdirs.keptRuns(), ['run-2', 'run-3']);
    assert.deepEqual((await readdir(kept)).sort(), ['run-2', 'run-3']);
  });

  it('does not hand over, and sweeps, what is older than the TTL', async () => {
    const workdirs = await started({ ttlMs: 1_000 });
    await workdirs.keep('run-1', await planJobDir('job-1'));
    await workdirs.keep('run-2', await planJobDir('job-2'));
    clock += 1_001;
    assert.equal(await workdirs.handOver('run-1', path.join(jobs, 'job-apply')), false);
    await workdirs.sweep();
    assert.deepEqual(await readdir(kept), []);
  });

  it('removes at start what an earlier agent process kept', async () => {
    await mkdir(path.join(kept, 'run-old'), { recursive: true });
    const workdirs = await started();
    assert.deepEqual(await readdir(kept), []);
    assert.equal(await workdirs.handOver('run-old', path.join(jobs, 'job-apply')), false);
  });

  it('is off with a TTL of 0, and never uses a run id that could name another path', async () => {
    const off = await started({ ttlMs: 0 });
    const dir = await planJobDir('job-1');
    await off.keep('run-1', dir);
    assert.deepEqual(off.keptRuns(), []);

    const on = await started();
    await on.keep('../escape', dir);
    assert.deepEqual(on.keptRuns(), []);
    assert.equal(await on.handOver('../escape', path.join(jobs, 'job-apply')), false);
  });
});
