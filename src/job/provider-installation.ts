// How the engine installs providers in this job. With the agent's provider
// cache on, the engine's only installation method is the agent's network
// mirror (no `direct`: the engines ask every method for versions, which would
// send each init to the origin registry after all); it trusts the mirror's CA
// through a bundle of the sandbox's own CAs plus that one, and waits long
// enough for the mirror to download a package it does not have yet. With
// the cache off, the engine downloads providers itself, and the agent's
// registry host overrides become `host` blocks.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JobConfig } from './config.ts';

export interface ProviderInstallation {
  mirrorUrl?: string | undefined;
  mirrorCa?: string | undefined;
  mirrorTimeoutSeconds: number;
  registryServices?: Readonly<Record<string, string>> | undefined;
}

export function providerInstallationOf(config: JobConfig): ProviderInstallation {
  return {
    mirrorUrl: config.providerMirrorUrl,
    mirrorCa: config.providerMirrorCa,
    mirrorTimeoutSeconds: config.providerMirrorTimeoutSeconds,
    registryServices: config.providerRegistryServices,
  };
}

/** The engine's CLI configuration: no CLI configuration of the host applies to the run. */
export function cliConfigText(installation: ProviderInstallation): string {
  const lines = ['# Written by Outpost for this job. Given to the engine as TF_CLI_CONFIG_FILE', '# so that no CLI configuration of the host applies to the run.', ''];
  if (installation.mirrorUrl !== undefined) {
    lines.push('provider_installation {', '  network_mirror {', `    url = ${hclString(installation.mirrorUrl)}`, '  }', '}', '');
  } else {
    for (const [host, url] of Object.entries(installation.registryServices ?? {})) {
      lines.push(`host ${hclString(host)} {`, '  services = {', `    "providers.v1" = ${hclString(url)}`, '  }', '}', '');
    }
  }
  return lines.join('\n');
}

/** Writes the engine's CLI configuration into the job directory (outside the configuration). */
export async function writeCliConfig(jobDir: string, installation: ProviderInstallation): Promise<string> {
  const file = path.join(jobDir, 'outpost.tfrc');
  await writeFile(file, cliConfigText(installation), { mode: 0o644 });
  return file;
}

// Where Go (which both engines are written in) looks for the system's CA bundle, in its order.
const systemBundles = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/**
 * Variables the engine needs to use the mirror. SSL_CERT_FILE replaces Go's
 * bundle file (not its certificate directories), and providers inherit it
 * when they call cloud APIs, so the bundle keeps every CA the engine would
 * have trusted (its SSL_CERT_FILE, else the first system bundle) and adds
 * the mirror's.
 */
export async function providerEnvironment(jobDir: string, installation: ProviderInstallation, engineEnv: Readonly<Record<string, string>>): Promise<Record<string, string>> {
  if (installation.mirrorUrl === undefined || installation.mirrorCa === undefined) return {};
  const trusted = await firstReadable([engineEnv.SSL_CERT_FILE, ...systemBundles]);
  const bundle = path.join(jobDir, 'outpost-ca-bundle.pem');
  await writeFile(bundle, `${trusted ?? ''}\n${installation.mirrorCa}\n`, { mode: 0o644 });
  const timeout = Math.max(installation.mirrorTimeoutSeconds, Number(engineEnv.TF_REGISTRY_CLIENT_TIMEOUT) || 0);
  return { SSL_CERT_FILE: bundle, TF_REGISTRY_CLIENT_TIMEOUT: String(timeout) };
}

async function firstReadable(files: readonly (string | undefined)[]): Promise<string | undefined> {
  for (const file of files) {
    if (!file) continue;
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return text;
  }
  return undefined;
}

/** An HCL string literal: JSON's escapes, plus the template sequences HCL would interpret. */
function hclString(value: string): string {
  return JSON.stringify(value).replace(/\$\{/g, '$${').replace(/%\{/g, '%%{');
}
