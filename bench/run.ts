// `npm run bench`: runs the benchmarks (not part of `npm test`) and prints
// their tables; `--json` also prints one JSON document with every result.
import os from 'node:os';
import { driverOverhead } from './driver-overhead.ts';
import { collectHooks } from './measure.ts';
import { providerCache } from './provider-cache.ts';

const json = process.argv.includes('--json');
const hooks = collectHooks();
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
};
// `npm run bench -- provider-cache` runs only the benchmarks named.
const only = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const wanted = (name: string) => only.length === 0 || only.includes(name);
try {
  if (wanted('driver-overhead')) results.driverOverhead = await driverOverhead(hooks);
  if (wanted('provider-cache')) results.providerCache = await providerCache(hooks);
} finally {
  await hooks.runAll();
}
if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
