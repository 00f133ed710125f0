// Where an engine release lives: its file names, its official download URLs,
// and the same files on an operator's mirror. Pure functions, no I/O.
//
// Official sources:
//   OpenTofu:  https://github.com/opentofu/opentofu/releases/download/v<v>/tofu_<v>_<os>_<arch>.zip
//              https://github.com/opentofu/opentofu/releases/download/v<v>/tofu_<v>_SHA256SUMS
//   Terraform: https://releases.hashicorp.com/terraform/<v>/terraform_<v>_<os>_<arch>.zip
//              https://releases.hashicorp.com/terraform/<v>/terraform_<v>_SHA256SUMS
//
// Mirror layout (OUTPOST_AGENT_BINARY_MIRROR): the official file names under
// `<mirror>/<engine>/<version>/`, with engine `opentofu` or `terraform`:
//   <mirror>/opentofu/1.10.10/tofu_1.10.10_linux_amd64.zip
//   <mirror>/opentofu/1.10.10/tofu_1.10.10_SHA256SUMS
//   <mirror>/terraform/1.5.7/terraform_1.5.7_linux_amd64.zip
//   <mirror>/terraform/1.5.7/terraform_1.5.7_SHA256SUMS
// A static web server or bucket holding copies of the release files is enough;
// the SHA256SUMS file is checked exactly as for the official sites.
import type { Engine } from '../../protocol/statuses.ts';

export interface Platform {
  os: string;
  arch: string;
}

export interface ReleaseFiles {
  /** File name of the release zip, e.g. `tofu_1.10.10_linux_amd64.zip`. */
  zipName: string;
  zipUrl: string;
  sumsName: string;
  sumsUrl: string;
}

const displayNames: Record<Engine, string> = { opentofu: 'OpenTofu', terraform: 'Terraform' };
const binaryNames: Record<Engine, string> = { opentofu: 'tofu', terraform: 'terraform' };

/** How the engine is named in messages for people: `OpenTofu`, `Terraform`. */
export function engineDisplayName(engine: Engine): string {
  return displayNames[engine];
}

/** Name of the executable inside the release zip, and in the cache. */
export function engineBinaryName(engine: Engine): string {
  return binaryNames[engine];
}

// Release versions as both projects publish them: 1.10.10, 1.11.0-rc1,
// 1.6.0-alpha5. No `/`, `\`, `+`, `%` or whitespace can pass, so a version can
// be a path segment and a URL segment without escaping.
const versionPattern = /^\d{1,4}\.\d{1,4}\.\d{1,4}(-[0-9A-Za-z][0-9A-Za-z.-]{0,40})?$/;

export function isValidEngineVersion(version: string): boolean {
  return versionPattern.test(version) && !version.includes('..');
}

const archNames: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' };

/** The release platform for a Node platform/arch pair (x64 → amd64). */
export function releasePlatform(nodePlatform: string, nodeArch: string): Platform {
  return { os: nodePlatform, arch: archNames[nodeArch] ?? nodeArch };
}

export function releaseFiles(engine: Engine, version: string, platform: Platform, mirror?: string): ReleaseFiles {
  const binary = engineBinaryName(engine);
  const zipName = `${binary}_${version}_${platform.os}_${platform.arch}.zip`;
  const sumsName = `${binary}_${version}_SHA256SUMS`;
  const base = mirror === undefined ? officialBase(engine, version) : `${mirror.replace(/\/+$/, '')}/${engine}/${version}`;
  return { zipName, zipUrl: `${base}/${zipName}`, sumsName, sumsUrl: `${base}/${sumsName}` };
}

function officialBase(engine: Engine, version: string): string {
  return engine === 'opentofu'
    ? `https://github.com/opentofu/opentofu/releases/download/v${version}`
    : `https://releases.hashicorp.com/terraform/${version}`;
}

/** The URL with any user name and password removed, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    // Not a URL we can parse: drop anything that looks like `//user:pass@`.
    return url.replace(/\/\/[^/@\s]*@/g, '//');
  }
}
