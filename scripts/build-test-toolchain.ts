// Builds what the tests run, from OpenTofu's Go module, with the same code an
// agent uses when it cannot download a release (`outpost engine build`):
// the tofu binary, and OpenTofu's own gRPC test provider (provider-simple-v6)
// that the provider-cache tests publish from a local registry (the Go module
// proxy does not serve terraform-provider-null's releases). Both land in the
// build directory (~/.cache/outpost, or OUTPOST_AGENT_ENGINE_BUILD_DIR /
// OUTPOST_TOOLCHAIN_CACHE), where test/support/toolchain.ts finds them.
//
// Run with the project's Node: `node_modules/.bin/node scripts/build-test-toolchain.ts`.
// Prints the tofu binary's path on its last line; reuses binaries already built.
import { runEngineBuildCommand } from '../src/agent/engines/build-command.ts';
import { tofuVersion } from '../test/support/toolchain.ts';

process.exitCode = await runEngineBuildCommand({
  version: tofuVersion,
  extraTargets: [{ package: './internal/provider-simple-v6/main', name: `terraform-provider-simple-${tofuVersion}`, ldflags: '-s -w' }],
});
