// The go-tfe conformance program (test/go-tfe): HashiCorp's Go client for
// the TFE API, run against a test server. scripts/build-go-tfe-check.sh
// builds it (`.ci/run` exports its path as OUTPOST_TEST_GO_TFE). It prints
// one line per check, `ok   <check>` or `FAIL <check>: <why>`, then a JSON
// summary, and exits 1 when a check failed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { inheritedEnvironment } from './cluster-environment.ts';
import type { TestHooks } from './cluster.ts';

const binaryVariable = 'OUTPOST_TEST_GO_TFE';

/**
 * For a suite that runs the program: its binary, or the reason to skip.
 * Under CI=true the reason is thrown instead: CI builds the program.
 */
export function goTfeForTests(what: string, env: NodeJS.ProcessEnv = process.env): { binary?: string; skip: string | false } {
  const binary = env[binaryVariable];
  let reason: string | undefined;
  if (binary === undefined || binary === '') reason = `${binaryVariable} is not set (bash scripts/build-go-tfe-check.sh builds the go-tfe program and prints its path)`;
  else if (!existsSync(binary)) reason = `${binaryVariable} names ${binary}, which does not exist`;
  if (reason === undefined) return { binary, skip: false };
  if (env.CI === 'true') throw new Error(`CI must ${what}, but ${reason}`);
  return { skip: reason };
}

export interface GoTfeTarget {
  /** The server's URL (TFE_ADDRESS). */
  readonly address: string;
  /** An API token (TFE_TOKEN). */
  readonly token: string;
  /** An agent pool with a running agent: the program's runs go there. */
  readonly poolId: string;
  readonly organization?: string;
}

export interface GoTfeSummary {
  readonly total: number;
  readonly passed: number;
  readonly failed: number;
  readonly failures: readonly { check: string; why: string }[] | null;
}

export interface GoTfeResult {
  /** Exit code; null when a signal ended the program. */
  readonly code: number | null;
  /** stdout and stderr as they came, interleaved. */
  readonly output: string;
  /** The check lines (`ok …` / `FAIL …`). */
  readonly lines: readonly string[];
  /** The last line, parsed; undefined when the program printed none. */
  readonly summary: GoTfeSummary | undefined;
}

/** Runs the program against the target and waits for it; killed when the test ends or after `timeoutMs`. */
export async function runGoTfeCheck(t: TestHooks, binary: string, target: GoTfeTarget, timeoutMs = 15 * 60_000): Promise<GoTfeResult> {
  const child = spawn(binary, [], {
    env: {
      ...inheritedEnvironment(),
      TFE_ADDRESS: target.address,
      TFE_TOKEN: target.token,
      OUTPOST_CHECK_AGENT_POOL: target.poolId,
      OUTPOST_CHECK_ORG: target.organization ?? 'default',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  }).finally(() => clearTimeout(timer));
  const output = Buffer.concat(chunks).toString('utf8');
  const all = output.split('\n').filter((line) => line !== '');
  return { code, output, lines: all.filter((line) => /^(ok {3}|FAIL )/.test(line)), summary: parseSummary(all.at(-1)) };
}

function parseSummary(line: string | undefined): GoTfeSummary | undefined {
  if (line === undefined || !line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as GoTfeSummary;
  } catch {
    return undefined;
  }
}
