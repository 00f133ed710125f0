// Finding a Go toolchain that can build OpenTofu from its Go module (the
// fallback when no release can be downloaded: engine-source-build.ts).
// Candidates, in order: OUTPOST_AGENT_GO, every `go` on the agent's PATH,
// then /usr/local/go/bin/go (where Go's own installer puts it, often not on
// a service's PATH). The first one at least `minimumGoMinor` wins; older
// ones are listed in the answer so the error can say why they were skipped.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, realpath } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** OpenTofu 1.10 needs Go 1.24; Debian 12's golang-go is 1.19. */
export const minimumGoMinor = 24;

export interface GoToolchain {
  path: string;
  /** As Go reports it, e.g. `go1.26.8`. */
  version: string;
}

export interface GoSearch {
  /** OUTPOST_AGENT_GO: a go binary. */
  configured: string | undefined;
  /** The PATH searched. */
  searchPath: string | undefined;
  /** Where Go's installer puts it; a parameter so tests can point elsewhere. */
  wellKnown?: readonly string[];
}

export interface GoSearchResult {
  found: GoToolchain | undefined;
  /** One sentence per candidate that was looked at and not used. */
  skipped: string[];
}

export async function findGoToolchain(search: GoSearch): Promise<GoSearchResult> {
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const candidate of candidates(search)) {
    const real = await realpath(candidate).catch(() => undefined);
    if (real === undefined || seen.has(real)) continue;
    seen.add(real);
    if (!(await isExecutable(candidate))) {
      skipped.push(`${candidate} is not executable`);
      continue;
    }
    const version = await goVersion(candidate);
    if (version === undefined) {
      skipped.push(`${candidate} did not report its version (\`go env GOVERSION\`)`);
      continue;
    }
    const minor = goMinor(version);
    if (minor === undefined || minor < minimumGoMinor) {
      skipped.push(`${candidate} is ${version}, older than go1.${minimumGoMinor}`);
      continue;
    }
    return { found: { path: candidate, version }, skipped };
  }
  if (search.configured !== undefined && !seen.has(await realpath(search.configured).catch(() => search.configured ?? ''))) {
    skipped.unshift(`OUTPOST_AGENT_GO (${search.configured}) does not exist`);
  }
  return { found: undefined, skipped };
}

function* candidates(search: GoSearch): Generator<string> {
  if (search.configured !== undefined) yield search.configured;
  for (const directory of (search.searchPath ?? '').split(path.delimiter)) {
    // Relative PATH entries mean "the current directory": never trust those.
    if (path.isAbsolute(directory)) yield path.join(directory, 'go');
  }
  yield* search.wellKnown ?? ['/usr/local/go/bin/go'];
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function goVersion(go: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(go, ['env', 'GOVERSION'], { timeout: 20_000 });
    const version = stdout.trim();
    return version.startsWith('go') || version.startsWith('devel') ? version : undefined;
  } catch {
    return undefined;
  }
}

/** `go1.26.8` → 26; a development build (`devel …`) is taken as new enough. */
export function goMinor(version: string): number | undefined {
  if (version.startsWith('devel')) return Number.MAX_SAFE_INTEGER;
  const match = /^go1\.(\d+)/.exec(version);
  return match ? Number(match[1]) : undefined;
}
