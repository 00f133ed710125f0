// `npm run bench`: runs the benchmarks (not part of `npm test`) and prints
// their tables; `--json` also prints one JSON document with every result.
import os from 'node:os';
import { driverOverhead } from './driver-overhead.ts';
import { collectHooks } from './measure.ts';

const json = process.argv.includes('--json');
const hooks = collectHooks();
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
};
try {
  results.driverOverhead = await driverOverhead(hooks);
} finally {
  await hooks.runAll();
}
if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
