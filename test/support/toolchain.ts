// Where tests find the real OpenTofu binary. `.ci/run` (through
// scripts/build-test-toolchain.ts) builds it from the OpenTofu Go module into
// a cache outside the repository; tests reuse it and fail loudly when it is missing.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const tofuVersion = '1.10.10';

export function toolchainCacheDir(): string {
  return process.env.OUTPOST_AGENT_ENGINE_BUILD_DIR ?? process.env.OUTPOST_TOOLCHAIN_CACHE ?? path.join(os.homedir(), '.cache', 'outpost');
}

/** Absolute path of the tofu binary built by scripts/build-test-toolchain.ts. */
export function tofuBinary(): string {
  const candidate = process.env.OUTPOST_TEST_TOFU ?? path.join(toolchainCacheDir(), `tofu-${tofuVersion}`);
  if (!existsSync(candidate)) {
    throw new Error(`OpenTofu ${tofuVersion} not found at ${candidate}: run scripts/build-test-toolchain.ts (or .ci/run) first`);
  }
  return candidate;
}

/**
 * Absolute path of OpenTofu's own gRPC test provider (provider-simple-v6,
 * resource `simple_resource`), which scripts/build-test-toolchain.ts builds from the
 * same module as the tofu binary: a real provider for tests that run
 * `tofu init` against a local registry, without reaching the internet.
 */
export function providerBinary(): string {
  const candidate = path.join(toolchainCacheDir(), `terraform-provider-simple-${tofuVersion}`);
  if (!existsSync(candidate)) {
    throw new Error(`OpenTofu's test provider (provider-simple-v6) not found at ${candidate}: run scripts/build-test-toolchain.ts (or .ci/run) first`);
  }
  return candidate;
}
