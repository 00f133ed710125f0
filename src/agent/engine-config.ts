// The agent's engine settings: where tofu/terraform binaries come from
// (engines/engine-cache.ts): the release download or a mirror, the binary
// cache and its eviction, a local binary, and a build from source.
import os from 'node:os';
import path from 'node:path';
import { asDurationMs, asEnum, asInt, asUrl, type Env } from '../config/settings.ts';

export const engineSettings = {
  binaryMirror: {
    env: ['OUTPOST_AGENT_BINARY_MIRROR'],
    description: 'Base URL of a mirror of the engines\' release files, used instead of the official sites. Layout: `<mirror>/<engine>/<version>/<official file name>`.',
    parse: asUrl,
  },
  binaryCacheSizeLimitMb: {
    env: ['OUTPOST_AGENT_BINARY_CACHE_SIZE_LIMIT_MB', 'SCALR_AGENT_BINARY_CACHE_SIZE_LIMIT_MB'],
    default: '5120',
    description: 'Size the engine binary cache is kept under, in MiB (`0`: no limit). Least recently used versions are removed first; a version a running job uses is never removed, even if the cache stays over the limit.',
    parse: asInt(0, 10_485_760),
  },
  binaryCacheThresholdDays: {
    env: ['OUTPOST_AGENT_BINARY_CACHE_THRESHOLD_DAYS', 'SCALR_AGENT_BINARY_CACHE_THRESHOLD_DAYS'],
    default: '30',
    description: 'Engine versions no job has used for this many days are removed from the binary cache (`0`: never by age). Checked at agent start and after each download.',
    parse: asInt(0, 36_500),
  },
  enginePath: {
    env: ['OUTPOST_AGENT_ENGINE_PATH'],
    description: 'A local engine binary (or a directory holding `tofu`/`terraform`) used when the requested version cannot be downloaded, if its version matches.',
    parse: (raw: string) => path.resolve(raw),
  },
  downloadTimeout: {
    env: ['OUTPOST_AGENT_DOWNLOAD_TIMEOUT'],
    default: '5m',
    description: 'Longest time an engine download may take before it is abandoned.',
    parse: asDurationMs,
  },
  engineBuild: {
    env: ['OUTPOST_AGENT_ENGINE_BUILD'],
    default: 'auto',
    description: 'When an OpenTofu version can be neither downloaded nor found locally: `auto` builds it from its Go module (`github.com/opentofu/opentofu`, through the Go module proxy) if a Go toolchain go1.24 or newer is found, with a progress line in the run log every 10 s; `off` fails the job instead. Terraform is never built. See docs/caches.md.',
    parse: asEnum(['auto', 'off'] as const),
  },
  engineBuildDir: {
    env: ['OUTPOST_AGENT_ENGINE_BUILD_DIR', 'OUTPOST_TOOLCHAIN_CACHE'],
    default: '~/.cache/outpost',
    description: 'Where OpenTofu binaries built from source are kept (`tofu-<version>`), shared by every agent, quickstart and `outpost engine build` of the user; a binary there is used before building again.',
    parse: (raw: string) => path.resolve(raw.replace(/^~(?=\/|$)/, os.homedir())),
  },
  goBinary: {
    env: ['OUTPOST_AGENT_GO'],
    description: 'The `go` binary that builds OpenTofu from source. Default: the first go1.24 or newer among `go` on PATH and `/usr/local/go/bin/go`.',
    parse: (raw: string) => path.resolve(raw),
  },
} as const;

/**
 * The environment a build of the engine from source runs in: the agent's
 * own, whole, since Go reads its settings there (GOPROXY, GOFLAGS, GOPATH,
 * HTTPS_PROXY, PATH). Read here, where the agent's settings are read.
 */
export function engineBuildEnvironment(env: Env = process.env): Env {
  return env;
}
