// `tofu init` of a configuration with a provider, from a local origin
// registry that behaves like one on the internet (a round-trip delay on every
// request and a bandwidth cap, both printed), in three ways:
// - direct: the engine downloads from the origin itself (no cache);
// - cold cache: through a fresh agent provider cache (it downloads, then serves);
// - warm cache: through a cache that already holds the package.
// Then ten inits at once: direct, and through one cold cache (one download
// shared by all ten). Each init runs in a fresh directory; iterations
// alternate the columns so machine noise hits them alike.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { startProviderMirror } from '../src/agent/providers/provider-cache-setup.ts';
import type { ProviderMirror } from '../src/agent/providers/provider-mirror.ts';
import { startProviderRegistry, type ProviderRegistry } from '../test/support/provider-registry.ts';
import { tofuBinary } from '../test/support/toolchain.ts';
import { printTable, summarize, type Hooks, type Summary } from './measure.ts';

const run = promisify(execFile);
const iterations = Number(process.env.BENCH_ITERATIONS ?? 5);
const hostname = 'registry.outpost.test';
const latencyMs = Number(process.env.BENCH_ORIGIN_LATENCY_MS ?? 50);
const bytesPerSecond = Number(process.env.BENCH_ORIGIN_MBPS ?? 20) * 1024 * 1024;
const parallel = 10;

const mainTf = `terraform {\n  required_providers {\n    simple = { source = "${hostname}/outpost-test/simple", version = "1.0.0" }\n  }\n}\nresource "simple_resource" "x" {}\n`;

interface Scratch {
  dir: string;
  remove(): Promise<void>;
}

async function scratch(prefix: string): Promise<Scratch> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** One `tofu init` in a fresh directory with this CLI configuration and CA bundle; returns ms. */
async function init(cliConfig: string, caBundle: string): Promise<number> {
  const work = await scratch('bench-init-');
  try {
    await writeFile(path.join(work.dir, 'main.tf'), mainTf);
    await writeFile(path.join(work.dir, 'cli.tfrc'), cliConfig);
    await writeFile(path.join(work.dir, 'ca.pem'), caBundle);
    const env = { PATH: process.env.PATH ?? '', HOME: work.dir, TF_CLI_CONFIG_FILE: path.join(work.dir, 'cli.tfrc'), SSL_CERT_FILE: path.join(work.dir, 'ca.pem'), CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1' };
    const started = performance.now();
    await run(tofuBinary(), ['init', '-input=false', '-no-color'], { cwd: work.dir, env });
    return performance.now() - started;
  } finally {
    await work.remove();
  }
}

async function startCache(origin: ProviderRegistry): Promise<{ mirror: ProviderMirror; url: string; caPem: string; close(): Promise<void> }> {
  const cacheDir = await scratch('bench-provider-cache-');
  const mirror = await startProviderMirror(
    {
      cacheDir: cacheDir.dir,
      sizeLimitMb: 0,
      versionsTtlMs: 10 * 60_000,
      networkMirrors: [],
      registryServices: { [hostname]: `${origin.url}/v1/providers/` },
      registryCredentials: {},
      caCert: origin.caPem,
      downloadTimeoutMs: 300_000,
      port: 0,
    },
    pino({ level: 'silent' }),
  );
  const access = mirror.open('bench', () => undefined);
  return {
    mirror,
    url: access.url,
    caPem: access.caPem,
    close: async () => {
      access.close();
      await mirror.close();
      await cacheDir.remove();
    },
  };
}

const mirrorConfig = (url: string) => `provider_installation {\n  network_mirror {\n    url = "${url}"\n  }\n}\n`;

export async function providerCache(hooks: Hooks): Promise<Record<string, unknown>> {
  const origin = await startProviderRegistry({ protocol: 'registry', providers: [{ namespace: 'outpost-test', type: 'simple', versions: ['1.0.0'] }], latencyMs, bytesPerSecond });
  hooks.after(() => origin.close());
  const directConfig = `host "${hostname}" {\n  services = {\n    "providers.v1" = "${origin.url}/v1/providers/"\n  }\n}\n`;
  const warm = await startCache(origin);
  hooks.after(() => warm.close());
  await init(mirrorConfig(warm.url), warm.caPem);

  const samples: Record<string, number[]> = { direct: [], cold: [], warm: [], parallelDirect: [], parallelCold: [], parallelWarm: [] };
  for (let i = 0; i < iterations; i++) {
    samples.direct!.push(await init(directConfig, origin.caPem));
    const cold = await startCache(origin);
    try {
      samples.cold!.push(await init(mirrorConfig(cold.url), cold.caPem));
    } finally {
      await cold.close();
    }
    samples.warm!.push(await init(mirrorConfig(warm.url), warm.caPem));

    samples.parallelDirect!.push(await wallTime(() => init(directConfig, origin.caPem)));
    const sharedCold = await startCache(origin);
    try {
      samples.parallelCold!.push(await wallTime(() => init(mirrorConfig(sharedCold.url), sharedCold.caPem)));
    } finally {
      await sharedCold.close();
    }
    samples.parallelWarm!.push(await wallTime(() => init(mirrorConfig(warm.url), warm.caPem)));
  }
  const summary = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, summarize(values)])) as Record<string, Summary>;
  printTable(`provider cache: one tofu init (ms), origin ${latencyMs} ms per request, ${bytesPerSecond / 1024 / 1024} MiB/s`, [
    ['direct from the origin (no cache)', summary.direct!],
    ['through the cache, cold', summary.cold!],
    ['through the cache, warm', summary.warm!],
  ]);
  printTable(`provider cache: ${parallel} tofu inits at once, wall time (ms)`, [
    ['direct from the origin (no cache)', summary.parallelDirect!],
    ['through one cold cache', summary.parallelCold!],
    ['through a warm cache', summary.parallelWarm!],
  ]);
  const ratios = {
    warmOverDirect: summary.warm!.median / summary.direct!.median,
    coldOverDirect: summary.cold!.median / summary.direct!.median,
    parallelColdOverDirect: summary.parallelCold!.median / summary.parallelDirect!.median,
    parallelWarmOverDirect: summary.parallelWarm!.median / summary.parallelDirect!.median,
  };
  process.stdout.write(`ratios (median): ${Object.entries(ratios).map(([name, value]) => `${name} ${value.toFixed(2)}`).join(', ')}\n\n`);
  return { origin: { latencyMs, bytesPerSecond }, iterations, summary, ratios };
}

async function wallTime(job: () => Promise<number>): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: parallel }, job));
  return performance.now() - started;
}
