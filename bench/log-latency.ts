// Log latency: from the moment a line is printed under the engine to the
// moment a client streaming the run's log receives it. A local-exec
// provisioner prints BENCH_LOG_LINES (default 200) lines, one every
// BENCH_LOG_INTERVAL_MS (default 50) plus the time `date` takes, each
// carrying `date +%s%N` taken just before it is printed. The client reads
// GET /api/v2/applies/:id/logs?follow=1 (opened right after the run is
// created: a followed apply log waits for the apply) and records, per line,
// Date.now() when the chunk holding it arrived minus the line's own
// timestamp: the same machine clock on both ends, millisecond resolution.
//
// The span covers the engine relaying the provisioner's output, the operation
// process writing it out, the agent's log shipper (which batches small output
// on a timer), the append request, the notification waking the follower, and
// the stream to the client. For comparison the same configuration is applied
// by hand (`tofu apply -auto-approve` in a fresh directory) and the same
// latency taken on the engine's stdout: what the engine alone adds.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRun, relatedId, uploadConfiguration } from '../test/support/api-calls.ts';
import { setupCluster } from '../test/support/test-cluster.ts';
import { waitForRunStatus } from '../test/support/waits.ts';
import { shippedEntryPoint as entryPoint } from '../test/support/cluster-environment.ts';
import { tofuBinary } from '../test/support/toolchain.ts';
import type { DatabaseBackend } from '../test/support/postgres.ts';
import type { Hooks } from './measure.ts';
import { percentiles, printPercentiles } from './percentiles.ts';

const lines = Number(process.env.BENCH_LOG_LINES ?? 200);
const intervalMs = Number(process.env.BENCH_LOG_INTERVAL_MS ?? 50);
const backend = (process.env.BENCH_BACKEND ?? 'sqlite') as DatabaseBackend;
const marker = 'outpost-bench-line';
// Digits after the marker, so the engine's echo of the command itself
// ("Executing: [...]", where the marker is followed by `$i`) never matches.
const linePattern = new RegExp(`${marker} (\\d+) (\\d+)`, 'g');

function configuration(): Record<string, string> {
  // A heredoc: no HCL escaping inside, and nothing here looks like `${`.
  const command = [
    'i=0',
    `while [ $i -lt ${lines} ]; do`,
    `  echo "${marker} $i $(date +%s%N)"`,
    '  i=$((i+1))',
    `  sleep ${(intervalMs / 1000).toFixed(3)}`,
    'done',
  ].join('\n');
  return {
    'main.tf': `resource "terraform_data" "talk" {\n  input = "${randomUUID()}"\n  provisioner "local-exec" {\n    command = <<EOT\n${command}\nEOT\n  }\n}\n`,
  };
}

/** Collects, per line number, arrival ms − embedded ms, from text arriving in chunks. */
class LineClock {
  readonly latencies = new Map<number, number>();
  #partial = '';

  receive(text: string): void {
    const arrived = Date.now();
    const whole = this.#partial + text;
    const cut = whole.lastIndexOf('\n') + 1;
    this.#partial = whole.slice(cut);
    for (const match of whole.slice(0, cut).matchAll(linePattern)) {
      const printedMs = Number(BigInt(match[2]!) / 1000n) / 1000;
      if (!this.latencies.has(Number(match[1]))) this.latencies.set(Number(match[1]), arrived - printedMs);
    }
  }
}

async function throughOutpost(hooks: Hooks): Promise<LineClock> {
  const cluster = await setupCluster(hooks, backend, { agents: 1, entryPoint });
  const { server } = cluster;
  const cv = await uploadConfiguration(server, cluster.workspace.id, configuration());
  const created = await createRun(server, cluster.workspace.id, cv);
  const clock = new LineClock();
  const response = await fetch(new URL(`/api/v2/applies/${relatedId(created, 'apply')}/logs?follow=1`, server.url), {
    headers: { authorization: `Bearer ${server.adminToken}` },
  });
  if (response.status !== 200 || !response.body) throw new Error(`log follow answered HTTP ${response.status}`);
  const decoder = new TextDecoder();
  for await (const chunk of response.body) clock.receive(decoder.decode(chunk, { stream: true }));
  await waitForRunStatus(server, created.id, ['applied'], 60_000 + lines * (intervalMs + 100), cluster.agents);
  return clock;
}

async function byHand(): Promise<LineClock> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-log-'));
  try {
    await writeFile(path.join(dir, 'main.tf'), configuration()['main.tf']!);
    const env = { ...process.env, TF_IN_AUTOMATION: '1', TF_INPUT: '0', TF_CLI_CONFIG_FILE: '/dev/null' };
    const clock = new LineClock();
    for (const args of [['init', '-input=false', '-no-color'], ['apply', '-input=false', '-no-color', '-auto-approve']]) {
      const child = spawn(tofuBinary(), args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (text: string) => clock.receive(text));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', resolve);
      });
      if (code !== 0) throw new Error(`tofu ${args[0]} exited ${code}`);
    }
    return clock;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function logLatency(hooks: Hooks): Promise<Record<string, unknown>> {
  const hand = await byHand();
  const outpost = await throughOutpost(hooks);
  const handLatency = percentiles([...hand.latencies.values()]);
  const outpostLatency = percentiles([...outpost.latencies.values()]);
  printPercentiles(`log latency: line printed under the engine → client has it (ms), ${lines} lines every ${intervalMs} ms, ${backend}`, [
    ['by hand: tofu apply stdout', handLatency],
    ['Outpost: apply log, follow=1', outpostLatency],
  ], 1);
  const missing = lines - outpost.latencies.size;
  if (missing > 0) process.stdout.write(`${missing} of ${lines} lines never reached the streaming client\n`);
  process.stdout.write('target: p99 ≤ 250 ms\n\n');
  return { backend, lines, intervalMs, hand: handLatency, outpost: outpostLatency, missing, target: { p99: 250 } };
}
