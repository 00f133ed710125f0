import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { containerMemoryInUse, parseProcessGroup, parseResidentKb, processGroupResidentBytes } from './memory-usage.ts';

test('/proc parsing: the process group past a command name with spaces and parentheses, and VmRSS', () => {
  assert.equal(parseProcessGroup('4242 (tofu (x) y) S 4200 4100 4100 0 -1 4194560 1 0 0 0'), 4100);
  assert.equal(parseProcessGroup('garbage'), undefined);
  assert.equal(parseResidentKb('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   51234 kB\nRssAnon:\t 1 kB\n'), 51234);
  assert.equal(parseResidentKb('Name:\tkthreadd\n'), undefined);
});

test('a process group\'s resident memory sums its members and skips processes that vanish mid-read', async (t) => {
  const proc = await mkdtemp(path.join(os.tmpdir(), 'outpost-proc-'));
  t.after(() => rm(proc, { recursive: true, force: true }));
  const processes: [string, number, string | undefined][] = [
    ['100', 100, 'VmRSS:\t1000 kB\n'],
    ['101', 100, 'VmRSS:\t500 kB\n'],
    ['102', 7, 'VmRSS:\t9999 kB\n'],
    // Gone between listing and reading: stat exists, status does not.
    ['103', 100, undefined],
  ];
  for (const [pid, group, status] of processes) {
    await mkdir(path.join(proc, pid));
    await writeFile(path.join(proc, pid, 'stat'), `${pid} (sh) S 1 ${group} ${group} 0`);
    if (status !== undefined) await writeFile(path.join(proc, pid, 'status'), status);
  }
  await mkdir(path.join(proc, 'self'));
  assert.equal(await processGroupResidentBytes(100, proc), 1500 * 1024);
  assert.equal(await processGroupResidentBytes(55, proc), undefined);
});

test('a real process group is measured (linux)', { skip: process.platform !== 'linux' }, async (t) => {
  const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((resolve) => child.once('spawn', resolve));
  const bytes = await processGroupResidentBytes(child.pid!);
  assert.ok(bytes !== undefined && bytes > 0, String(bytes));
});

test('container memory as the docker CLI counts it: usage minus inactive file cache (v1 and v2)', () => {
  assert.equal(containerMemoryInUse({ memory_stats: { usage: 1000, stats: { total_inactive_file: 300, inactive_file: 100 } } }), 700);
  assert.equal(containerMemoryInUse({ memory_stats: { usage: 1000, stats: { inactive_file: 100 } } }), 900);
  assert.equal(containerMemoryInUse({ memory_stats: { usage: 1000, stats: { inactive_file: 2000 } } }), 1000);
  assert.equal(containerMemoryInUse({ memory_stats: { usage: 1000 } }), 1000);
  // A stopped container's stats carry no usage.
  assert.equal(containerMemoryInUse({ memory_stats: {} }), undefined);
  assert.equal(containerMemoryInUse({}), undefined);
});
