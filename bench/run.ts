// `npm run bench`: runs the benchmarks (not part of `npm test`) and prints
// their tables; `--json` also prints one JSON document with every result.
import os from 'node:os';
import { claimLatency } from './claim-latency.ts';
import { controlPlaneScale } from './control-plane-scale.ts';
import { driverOverhead } from './driver-overhead.ts';
import { footprint } from './footprint.ts';
import { kubernetesStart } from './kubernetes-start.ts';
import { logLatency } from './log-latency.ts';
import { collectHooks } from './measure.ts';
import { providerCache } from './provider-cache.ts';
import { serverlessStart } from './serverless-start.ts';
import { throughput } from './throughput.ts';
import { vcsCommitToRun } from './vcs-commit-to-run.ts';

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
  if (wanted('claim-latency')) results.claimLatency = await claimLatency(hooks);
  if (wanted('throughput')) results.throughput = await throughput(hooks);
  if (wanted('log-latency')) results.logLatency = await logLatency(hooks);
  if (wanted('control-plane-scale')) results.controlPlaneScale = await controlPlaneScale(hooks);
  if (wanted('footprint')) results.footprint = await footprint(hooks);
  if (wanted('kubernetes-start')) results.kubernetesStart = await kubernetesStart(hooks);
  if (wanted('serverless-start')) results.serverlessStart = await serverlessStart(hooks);
  if (wanted('vcs-commit-to-run')) results.vcsCommitToRun = await vcsCommitToRun(hooks);
} finally {
  await hooks.runAll();
}
if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
