// What the run log says when no engine binary could be provided: what was
// tried, and the ways out, each with what to set or run. The same sentence
// reaches the agent's log and the run's error.
import type { Engine } from '../../protocol/statuses.ts';
import { minimumGoMinor } from './go-toolchain.ts';
import { engineBinaryName, engineDisplayName, redactUrl, releaseFiles, type Platform } from './release-files.ts';

/** Measured on a 2-core machine (docs/caches.md, "Building OpenTofu from source"). */
export const buildDuration =
  'The first build takes about 4 minutes on 2 cores (it downloads about 210 Go modules and compiles about 1,400 packages); with Go\'s caches warm, seconds.';

/** Why the last way (an OpenTofu build from source) did not give a binary. */
export type BuildOutlook =
  | { kind: 'not-buildable' }
  | { kind: 'off' }
  | { kind: 'no-go'; skipped: string[] }
  | { kind: 'failed'; reason: string };

export interface UnavailableContext {
  engine: Engine;
  version: string;
  /** Why the download failed. */
  failure: string;
  /** Local binaries looked at and not used. */
  skipped: string[];
  build: BuildOutlook;
  platform: Platform;
  mirror: string | undefined;
  buildDir: string | undefined;
}

export function unavailableMessage(context: UnavailableContext): string {
  const { engine, version, mirror } = context;
  const name = `${engineDisplayName(engine)} ${version}`;
  const binary = engineBinaryName(engine);
  const files = releaseFiles(engine, version, context.platform, mirror);
  const tried = [
    `the download failed (${context.failure})`,
    context.skipped.length === 0 ? `no local ${binary} binary was found` : `local binaries were not usable (${context.skipped.join('; ')})`,
    buildTried(context),
  ].filter((part) => part !== undefined);
  const ways = [
    mirror === undefined
      ? `a mirror: set OUTPOST_AGENT_BINARY_MIRROR to a URL that serves the release files as <mirror>/${engine}/${version}/${files.zipName} and ${files.sumsName}`
      : `a mirror: make OUTPOST_AGENT_BINARY_MIRROR serve ${redactUrl(files.zipUrl)} and ${files.sumsName} next to it`,
    `a binary: set OUTPOST_AGENT_ENGINE_PATH=/path/to/${binary} (a ${binary} that reports version ${version}), or put one on the agent's PATH`,
  ];
  if (engine === 'opentofu') {
    ways.push(
      context.build.kind === 'off'
        ? `a build from source: set OUTPOST_AGENT_ENGINE_BUILD=auto with Go go1.${minimumGoMinor} or newer on the agent's PATH (or OUTPOST_AGENT_GO), or run \`npx outpost engine build ${version}\` on the agent's machine`
        : `a build from source: install Go go1.${minimumGoMinor} or newer (https://go.dev/dl/) on the agent's PATH or set OUTPOST_AGENT_GO to it, or run \`npx outpost engine build ${version}\` on a machine with Go and set OUTPOST_AGENT_ENGINE_PATH to the binary it prints`,
    );
  }
  const numbered = ways.map((way, index) => `(${index + 1}) ${way}`).join('; ');
  return `Could not provide ${name}: ${tried.join(', ')}. Take one of ${ways.length === 3 ? 'three' : 'two'} ways: ${numbered}.`;
}

function buildTried(context: UnavailableContext): string | undefined {
  const { build } = context;
  switch (build.kind) {
    case 'not-buildable':
      return `${engineDisplayName(context.engine)} cannot be built from source by the agent (only OpenTofu can)`;
    case 'off':
      return 'building OpenTofu from source is off (OUTPOST_AGENT_ENGINE_BUILD=off)';
    case 'no-go':
      return `no Go toolchain go1.${minimumGoMinor} or newer was found to build it from source${build.skipped.length > 0 ? ` (${build.skipped.join('; ')})` : ''}`;
    case 'failed':
      return `building it from source into ${context.buildDir ?? 'the build directory'} failed: ${build.reason}`;
  }
}
