// Names of providers and provider packages, as they appear in the network
// mirror protocol's paths and in the cache's directory layout. Every part is
// checked against a strict pattern before it names a file or an upstream
// URL: they come from requests, so "..", "/" or "%2f" must never get through.

export interface ProviderAddress {
  /** Registry host name, lower case, e.g. `registry.opentofu.org`. */
  hostname: string;
  namespace: string;
  type: string;
}

export interface PackageKey extends ProviderAddress {
  version: string;
  /** `<os>_<arch>`, e.g. `linux_amd64`. */
  platform: string;
}

// A DNS name (with an optional port, as some private registries use) whose
// labels start and end with a letter or digit: no empty label, no "..".
const hostnamePattern = /^(?=.{1,253}(:|$))[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;
const namePattern = /^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$/;
const versionPattern = /^\d{1,9}\.\d{1,9}\.\d{1,9}(?:-[0-9a-z.-]{1,64})?(?:\+[0-9a-z.-]{1,64})?$/;
const platformPattern = /^[a-z0-9]{1,32}_[a-z0-9]{1,32}$/;

/** The address from request path parts, normalised to lower case; undefined when a part is not valid. */
export function parseProviderAddress(hostname: string, namespace: string, type: string): ProviderAddress | undefined {
  const address = { hostname: hostname.toLowerCase(), namespace: namespace.toLowerCase(), type: type.toLowerCase() };
  if (!hostnamePattern.test(address.hostname) || !namePattern.test(address.namespace) || !namePattern.test(address.type)) return undefined;
  return address;
}

export function isValidVersion(version: string): boolean {
  return versionPattern.test(version.toLowerCase());
}

export function isValidPlatform(platform: string): boolean {
  return platformPattern.test(platform);
}

export function providerName(address: ProviderAddress): string {
  return `${address.hostname}/${address.namespace}/${address.type}`;
}

export function packageName(key: PackageKey): string {
  return `${providerName(key)} ${key.version} (${key.platform})`;
}

/** The official file name of a package, which the engine sees in the mirror's archive URL. */
export function packageFileName(key: PackageKey): string {
  return `terraform-provider-${key.type}_${key.version}_${key.platform}.zip`;
}

/** The platform the agent's jobs run on, in the registry's spelling. */
export function hostPlatform(platform: NodeJS.Platform = process.platform, arch: string = process.arch): string {
  const archNames: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' };
  return `${platform}_${archNames[arch] ?? arch}`;
}

/**
 * Whether an include pattern of a network mirror (`hostname/namespace/type`,
 * each part a name or `*`, as in the engines' provider_installation blocks)
 * matches the address.
 */
export function matchesPattern(pattern: string, address: ProviderAddress): boolean {
  const parts = pattern.toLowerCase().split('/');
  const actual = [address.hostname, address.namespace, address.type];
  return parts.length === 3 && parts.every((part, index) => part === '*' || part === actual[index]);
}
