// The apply side of a handed-over plan directory: it is used only when its
// plan file is the control plane's, and otherwise cleared for a fresh start.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { adoptHandedOverDirectory, jobFiles, sameContent, savedPlanTarget } from './plan-workdir.ts';

const root = await mkdtemp(path.join(os.tmpdir(), 'plan-workdir-'));
after(() => rm(root, { recursive: true, force: true }));

async function handedOver(name: string, plan: string): Promise<string> {
  const workdir = path.join(root, name);
  await mkdir(path.join(workdir, 'config', '.terraform'), { recursive: true });
  await writeFile(path.join(workdir, 'plan.tfplan'), plan);
  return workdir;
}

describe('a handed-over plan directory', () => {
  it('downloads the saved plan over the plan file of a fresh directory', async () => {
    const workdir = path.join(root, 'fresh');
    await mkdir(workdir);
    assert.deepEqual(await savedPlanTarget(workdir), { file: jobFiles(workdir).plan, handedOver: false });
  });

  it('is used when the downloaded plan is the same, byte for byte', async () => {
    const workdir = await handedOver('same', 'the plan');
    const target = await savedPlanTarget(workdir);
    assert.equal(target.handedOver, true);
    await writeFile(target.file, 'the plan');

    assert.equal(await adoptHandedOverDirectory(workdir, target.file), true);
    assert.deepEqual((await readdir(workdir)).sort(), ['config', 'plan.tfplan']);
  });

  it('is cleared of its configuration when the plan differs, and the downloaded plan takes its place', async () => {
    const workdir = await handedOver('different', 'the plan, rewritten');
    const target = await savedPlanTarget(workdir);
    await writeFile(target.file, 'the plan, reviewed');

    assert.equal(await adoptHandedOverDirectory(workdir, target.file), false);
    assert.deepEqual(await readdir(workdir), ['plan.tfplan']);
    assert.equal(await readFile(jobFiles(workdir).plan, 'utf8'), 'the plan, reviewed');
  });

  it('compares content, not only size', async () => {
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    await writeFile(a, Buffer.alloc(3 * 1024 * 1024, 1));
    const changed = Buffer.alloc(3 * 1024 * 1024, 1);
    changed[changed.length - 1] = 2;
    await writeFile(b, changed);
    assert.equal(await sameContent(a, b), false);
    await writeFile(b, Buffer.alloc(3 * 1024 * 1024, 1));
    assert.equal(await sameContent(a, b), true);
  });
});
