// A local provider origin for tests that run the real engine's `tofu init`:
// it serves OpenTofu's own gRPC test provider (provider-simple-v6) as
// official-style release zips over HTTPS, either as a provider registry (with
// SHA256SUMS signed like a public registry signs them) or as a provider
// network mirror. It records every request and can be told to fail, cut a
// download short, or be slow, so tests can watch how the engine and Outpost
// react without reaching the internet.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMirrorCertificate } from '../../src/agent/providers/mirror-certificate.ts';
import { buildPackage, generateSigningKey, platform, protocols, type Package, type SigningKey } from './provider-packages.ts';

export interface ProviderPackageSpec {
  namespace: string;
  type: string;
  versions: string[];
}

export interface RegistryRequest {
  method: string;
  /** URL path without the query, percent-decoded (a mirror path holds `localhost:<port>`). */
  path: string;
  status: number;
  /** Body bytes actually handed to the socket. */
  bytes: number;
}

export interface RegistryFault {
  path: RegExp;
  /** How many matching requests this fault answers; default 1. */
  times?: number;
  /** Answer with this status and a short body. */
  status?: number;
  /** Send 200 with the full Content-Length, write this many body bytes, then destroy the socket. */
  truncateAfterBytes?: number;
}

export interface ProviderRegistry {
  readonly url: string;
  /** `localhost:<port>`: the hostname part of a provider source address served here. */
  readonly host: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly requests: RegistryRequest[];
  packageSha256(namespace: string, type: string, version: string): string;
  fault(fault: RegistryFault): void;
  clearRequests(): void;
  close(): Promise<void>;
}

export interface ProviderRegistryOptions {
  protocol: 'registry' | 'mirror';
  providers: ProviderPackageSpec[];
  /** Registry protocol only: sign SHA256SUMS with a fresh OpenPGP key and list it in signing_keys (default true). */
  sign?: boolean;
  /** Bandwidth of the registry's link, in bytes per second, shared by all responses at once (a slow origin); default unlimited. */
  bytesPerSecond?: number;
  /** Added before each response (a simulated round trip); default 0. */
  latencyMs?: number;
  /** Where the zips, SHA256SUMS and signatures are written; default a fresh temporary directory, removed on close. */
  dir?: string;
}

interface Reply {
  status: number;
  contentType: string;
  body: Buffer;
}

export async function startProviderRegistry(options: ProviderRegistryOptions): Promise<ProviderRegistry> {
  const sign = options.sign ?? true;
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'outpost-provider-registry-')));
  const certificate = await createMirrorCertificate({ hosts: ['localhost', '127.0.0.1'], issuer: 'Outpost test registry CA' });
  const caFile = path.join(dir, 'registry-ca.pem');
  await writeFile(caFile, certificate.caPem);
  const signingKey = sign ? await generateSigningKey() : undefined;

  const packages = new Map<string, Package>();
  for (const spec of options.providers) {
    for (const version of spec.versions) {
      const built = await buildPackage(spec.type, version, signingKey);
      packages.set(packageKey(spec.namespace, spec.type, version), built);
      await writeFile(path.join(dir, built.zipName), built.zip);
      await writeFile(path.join(dir, built.sumsName), built.sums);
      if (signingKey) await writeFile(path.join(dir, `${built.sumsName}.sig`), built.signature);
    }
  }

  const requests: RegistryRequest[] = [];
  const link: Link = { bytesPerSecond: options.bytesPerSecond, freeAt: 0 };
  const faults: { fault: RegistryFault; remaining: number }[] = [];
  let url = '';

  const takeFault = (urlPath: string): RegistryFault | undefined => {
    const index = faults.findIndex(({ fault }) => {
      fault.path.lastIndex = 0; // a /g or /y pattern would otherwise remember where it last matched
      return fault.path.test(urlPath);
    });
    const entry = faults[index];
    if (!entry) return undefined;
    entry.remaining -= 1;
    if (entry.remaining <= 0) faults.splice(index, 1);
    return entry.fault;
  };

  const route = (urlPath: string): Reply => {
    const segments = urlPath.split('/').slice(1);
    return (options.protocol === 'registry' ? registryRoute : mirrorRoute)(segments, { url, packages, signingKey, providers: options.providers });
  };

  const answer = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const urlPath = requestPath(request.url);
    let bytes = 0;
    let recorded = false;
    // Recorded before the last byte or the reset goes out, so a client that has
    // seen the response (even one in this process) always finds it in the log.
    const record = (): void => {
      if (!recorded) requests.push({ method: request.method ?? 'GET', path: urlPath, status: response.statusCode, bytes });
      recorded = true;
    };
    response.once('close', record); // the client went away mid-response
    if (options.latencyMs) await sleep(options.latencyMs);
    const fault = takeFault(urlPath);
    const reply = fault?.status !== undefined ? textReply(fault.status, `fault injected: ${fault.status}\n`) : route(urlPath);
    response.writeHead(reply.status, { 'content-type': reply.contentType, 'content-length': reply.body.length });
    const body = request.method === 'HEAD' ? Buffer.alloc(0) : reply.body.subarray(0, fault?.truncateAfterBytes);
    await writePaced(response, body, link, (count) => (bytes += count));
    record();
    if (fault?.truncateAfterBytes !== undefined) response.destroy();
    else response.end();
  };

  const server = https.createServer({ cert: certificate.certPem, key: certificate.keyPem }, (request, response) => {
    answer(request, response).catch((error: unknown) => {
      console.error('provider registry fixture failed to answer', error);
      response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `localhost:${(server.address() as AddressInfo).port}`;
  url = `https://${host}`;

  return {
    url,
    host,
    caFile,
    caPem: certificate.caPem,
    requests,
    packageSha256(namespace, type, version) {
      const found = packages.get(packageKey(namespace, type, version));
      if (!found) throw new Error(`provider registry fixture serves no ${namespace}/${type} ${version}`);
      return found.sha256;
    },
    fault(fault) {
      faults.push({ fault, remaining: fault.times ?? 1 });
    },
    clearRequests() {
      requests.length = 0;
    },
    async close() {
      // Keep-alive connections from the engine would otherwise hold close() open.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

interface RouteContext {
  url: string;
  packages: Map<string, Package>;
  signingKey: SigningKey | undefined;
  providers: ProviderPackageSpec[];
}

/** The provider registry protocol: service discovery, versions, download metadata, and the files it points at. */
function registryRoute(segments: string[], context: RouteContext): Reply {
  if (segments.join('/') === '.well-known/terraform.json') return jsonReply({ 'providers.v1': '/v1/providers/' });
  if (segments[0] === 'v1' && segments[1] === 'providers') {
    const [, , namespace = '', type = '', versionOrList = '', download, targetOs, targetArch, ...rest] = segments;
    const spec = findProvider(context.providers, namespace, type);
    if (spec && versionOrList === 'versions' && download === undefined) {
      return jsonReply({ versions: spec.versions.map((version) => ({ version, protocols, platforms: [platform] })) });
    }
    const found = context.packages.get(packageKey(namespace, type, versionOrList));
    if (found && download === 'download' && targetOs === platform.os && targetArch === platform.arch && rest.length === 0) {
      const files = `${context.url}/files/${namespace}/${type}/${versionOrList}`;
      const keys = context.signingKey ? [{ key_id: context.signingKey.keyId, ascii_armor: context.signingKey.armoredPublicKey }] : [];
      return jsonReply({
        protocols,
        os: targetOs,
        arch: targetArch,
        filename: found.zipName,
        download_url: `${files}/${found.zipName}`,
        shasums_url: `${files}/${found.sumsName}`,
        // Fetched even when no keys are listed, so an unsigned registry serves an empty file here.
        shasums_signature_url: `${files}/${found.sumsName}.sig`,
        shasum: found.sha256,
        signing_keys: { gpg_public_keys: keys },
      });
    }
    return notFound();
  }
  const [root, namespace = '', type = '', version = '', file, ...rest] = segments;
  const found = context.packages.get(packageKey(namespace, type, version));
  if (root !== 'files' || !found || rest.length > 0) return notFound();
  if (file === found.zipName) return binaryReply(found.zip);
  if (file === found.sumsName) return textReply(200, found.sums.toString());
  if (file === `${found.sumsName}.sig`) return binaryReply(found.signature);
  return notFound();
}

/** The provider network mirror protocol, for any origin hostname, laid out like `tofu providers mirror` writes it. */
function mirrorRoute(segments: string[], context: RouteContext): Reply {
  const [, namespace = '', type = '', file = '', ...rest] = segments;
  const spec = findProvider(context.providers, namespace, type);
  if (!spec || rest.length > 0) return notFound();
  if (file === 'index.json') return jsonReply({ versions: Object.fromEntries(spec.versions.map((version) => [version, {}])) });
  const found = context.packages.get(packageKey(namespace, type, file.replace(/\.json$/, '')));
  if (found && file.endsWith('.json')) {
    // Relative to this document, so the zip is fetched from next to it.
    const archive = { url: found.zipName, hashes: [`zh:${found.sha256}`] };
    return jsonReply({ archives: { [`${platform.os}_${platform.arch}`]: archive } });
  }
  const zip = spec.versions.map((version) => context.packages.get(packageKey(namespace, type, version))).find((each) => each?.zipName === file);
  return zip ? binaryReply(zip.zip) : notFound();
}

/** The registry's link: each chunk sent reserves its share of the bandwidth, whichever response it belongs to. */
interface Link {
  bytesPerSecond: number | undefined;
  /** Epoch ms when the link has sent everything reserved so far. */
  freeAt: number;
}

/**
 * Writes `body` in chunks, no faster than the link allows when it is capped,
 * reporting each chunk once it reached the socket; stops when the client goes away.
 */
async function writePaced(response: ServerResponse, body: Buffer, link: Link, onWritten: (count: number) => void): Promise<void> {
  const { bytesPerSecond } = link;
  const chunkSize = bytesPerSecond ? Math.max(1, Math.floor(bytesPerSecond / 20)) : 64 * 1024;
  let written = 0;
  while (written < body.length && !response.destroyed) {
    const chunk = body.subarray(written, written + chunkSize);
    if (bytesPerSecond) {
      link.freeAt = Math.max(link.freeAt, Date.now()) + (chunk.length / bytesPerSecond) * 1000;
      await sleep(Math.max(0, link.freeAt - Date.now()));
    }
    if (!(await writeChunk(response, chunk))) break;
    written += chunk.length;
    onWritten(chunk.length);
  }
}

function writeChunk(response: ServerResponse, chunk: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => resolve(false);
    response.once('close', onClose);
    response.write(chunk, (error) => {
      response.off('close', onClose);
      resolve(!error);
    });
  });
}

function requestPath(rawUrl: string | undefined): string {
  const { pathname } = new URL(rawUrl ?? '/', 'https://localhost');
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

function findProvider(providers: ProviderPackageSpec[], namespace: string, type: string): ProviderPackageSpec | undefined {
  return providers.find((spec) => spec.namespace === namespace && spec.type === type);
}

function packageKey(namespace: string, type: string, version: string): string {
  return `${namespace}/${type}/${version}`;
}

function jsonReply(value: unknown): Reply {
  return { status: 200, contentType: 'application/json', body: Buffer.from(JSON.stringify(value)) };
}

function textReply(status: number, text: string): Reply {
  return { status, contentType: 'text/plain; charset=utf-8', body: Buffer.from(text) };
}

function binaryReply(body: Buffer): Reply {
  return { status: 200, contentType: 'application/octet-stream', body };
}

function notFound(): Reply {
  return { ...jsonReply({ errors: ['Not Found'] }), status: 404 };
}
