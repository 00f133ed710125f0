// Network namespaces for tests where a service must be reachable only from
// inside one: a forge that the control plane cannot reach, but an agent in
// the namespace can. Each namespace gets its loopback and a veth pair to the
// host: processes inside reach a host listener on `hostAddress`, the host
// reaches `nsAddress`, and what binds 127.0.0.1 inside stays inside.
//
// Needs root and iproute2's `ip`. Touches nothing but its own namespace and
// veth pair (no bridge, no iptables rule: host and namespace talk directly
// over the pair). A namespace is removed by destroy(), at the test process's
// exit, and, if that process was killed, by the next process that creates
// one: the host end of each pair names its owner's pid in its alias.
import { execFileSync, spawn } from 'node:child_process';

export interface Netns {
  readonly name: string;
  /** The host end of the pair (10.213.x.y): a host listener bound here is reachable from inside. */
  readonly hostAddress: string;
  /** The namespace's end of the pair, reachable from the host. */
  readonly nsAddress: string;
  readonly hostInterface: string;
  /** `args` prefixed to run inside: ['ip', 'netns', 'exec', name, ...args]. */
  exec(args: readonly string[]): string[];
  /** Runs a command inside; resolves with its stdout, rejects with its stderr when it fails. */
  run(args: readonly string[], options?: RunOptions): Promise<string>;
  /** An HTTP request made from inside the namespace. */
  request(request: NetnsRequest): Promise<NetnsResponse>;
  /** Removes the pair and the namespace; idempotent. Stop the processes inside first. */
  destroy(): Promise<void>;
}

export interface RunOptions {
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

export interface NetnsRequest {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutMs?: number;
}

export interface NetnsResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * For a suite that needs network namespaces: the reason to skip, or false.
 * Under CI=true the reason is thrown instead: CI runs as root with iproute2.
 */
export function netnsForTests(what: string, env: NodeJS.ProcessEnv = process.env): { skip: string | false } {
  let reason: string | undefined;
  if (process.getuid?.() !== 0) reason = 'network namespaces need root';
  else {
    try {
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    } catch {
      reason = "iproute2's `ip` does not run (apt-get install iproute2)";
    }
  }
  if (reason === undefined) return { skip: false };
  if (env.CI === 'true') throw new Error(`CI must ${what}, but ${reason}`);
  return { skip: reason };
}

/** Runs `args` with `ip netns exec <name>`. */
export function runInNetns(name: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return runCommand(['ip', 'netns', 'exec', name, ...args], options);
}

// Node's fetch in a child inside the namespace (the same Node binary as the
// tests), the request on its stdin and the response on its stdout: a socket
// belongs to the namespace of the process that opens it.
const requestScript = `
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
try {
  const response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: AbortSignal.timeout(request.timeoutMs) });
  const body = await response.text();
  process.stdout.write(JSON.stringify({ status: response.status, headers: Object.fromEntries(response.headers), body }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.cause?.code ?? error?.cause?.message ?? error?.message ?? error) }));
}
`;

/** An HTTP request made from inside namespace `name`; rejects when no response came (refused, timed out). */
export async function requestInNetns(name: string, request: NetnsRequest): Promise<NetnsResponse> {
  const timeoutMs = request.timeoutMs ?? 30_000;
  const input = JSON.stringify({ url: request.url, method: request.method ?? 'GET', headers: request.headers ?? {}, body: request.body, timeoutMs });
  const stdout = await runInNetns(name, [process.execPath, '--input-type=module', '-e', requestScript], { input, timeoutMs: timeoutMs + 10_000 });
  const result = JSON.parse(stdout) as NetnsResponse | { error: string };
  if ('error' in result) throw new Error(`${request.method ?? 'GET'} ${request.url} from netns ${name}: ${result.error}`);
  return result;
}

const live = new Map<string, () => void>();
let sweptStale = false;
const aliasPrefix = 'outpost-test';

/**
 * Creates namespace `name` (give one unique to the test process, such as
 * one with its pid: names are global to the machine) with `lo` up and a
 * veth pair in a /30 of its own from 10.213.0.0/16.
 */
export async function createNetns(name: string): Promise<Netns> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`unusable netns name ${JSON.stringify(name)}`);
  if (!sweptStale) {
    sweptStale = true;
    sweepStale();
  }
  await runCommand(['ip', 'netns', 'add', name]);
  let hostInterface: string | undefined;
  const removeSync = (): void => {
    if (hostInterface !== undefined) ignoreFailure(() => execFileSync('ip', ['link', 'del', hostInterface!], { stdio: 'ignore' }));
    ignoreFailure(() => execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }));
  };
  live.set(name, removeSync);
  installExitCleanup();
  try {
    await runCommand(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    const pair = await addVethPair(name);
    hostInterface = pair.hostInterface;
    await runCommand(['ip', 'link', 'set', 'dev', pair.hostInterface, 'alias', `${aliasPrefix} pid=${process.pid} netns=${name}`]);
    await runCommand(['ip', 'addr', 'add', `${pair.hostAddress}/30`, 'dev', pair.hostInterface]);
    await runCommand(['ip', 'link', 'set', 'dev', pair.hostInterface, 'up']);
    await runCommand(['ip', '-n', name, 'addr', 'add', `${pair.nsAddress}/30`, 'dev', pair.nsInterface]);
    await runCommand(['ip', '-n', name, 'link', 'set', 'dev', pair.nsInterface, 'up']);
    return {
      name,
      hostAddress: pair.hostAddress,
      nsAddress: pair.nsAddress,
      hostInterface: pair.hostInterface,
      exec: (args) => ['ip', 'netns', 'exec', name, ...args],
      run: (args, options) => runInNetns(name, args, options),
      request: (request) => requestInNetns(name, request),
      destroy: async () => {
        live.delete(name);
        removeSync();
      },
    };
  } catch (error) {
    live.delete(name);
    removeSync();
    throw error;
  }
}

interface VethPair {
  readonly hostInterface: string;
  readonly nsInterface: string;
  readonly hostAddress: string;
  readonly nsAddress: string;
}

// The pair's names and subnet derive from one index, so creating the link
// (which fails when the name exists) reserves the subnet too, also against
// another test process doing the same.
async function addVethPair(netns: string): Promise<VethPair> {
  const used = addressesInUse();
  for (let attempt = 0; attempt < 50; attempt++) {
    const index = 1 + Math.floor(Math.random() * 16_383);
    const base = `10.213.${index >> 6}.${(index & 63) << 2}`;
    const [a, b, c, d] = base.split('.').map(Number) as [number, number, number, number];
    const hostAddress = `${a}.${b}.${c}.${d + 1}`;
    const nsAddress = `${a}.${b}.${c}.${d + 2}`;
    if (used.has(hostAddress) || used.has(nsAddress)) continue;
    const hostInterface = `outv${index}h`;
    const nsInterface = `outv${index}n`;
    try {
      await runCommand(['ip', 'link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', nsInterface, 'netns', netns]);
    } catch (error) {
      if (/exists/i.test((error as Error).message)) continue;
      throw error;
    }
    return { hostInterface, nsInterface, hostAddress, nsAddress };
  }
  throw new Error('no free veth name and 10.213.0.0/16 subnet after 50 attempts');
}

function addressesInUse(): Set<string> {
  const out = execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' });
  const links = JSON.parse(out) as Array<{ addr_info?: Array<{ local?: string }> }>;
  return new Set(links.flatMap((link) => (link.addr_info ?? []).map((info) => info.local ?? '')));
}

// Pairs (and their namespaces) whose owning test process is gone: a killed
// process never ran its exit cleanup.
function sweepStale(): void {
  let links: Array<{ ifname: string; ifalias?: string }>;
  try {
    links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' })) as typeof links;
  } catch {
    return;
  }
  for (const link of links) {
    const match = /^outpost-test pid=(\d+) netns=(\S+)$/.exec(link.ifalias ?? '');
    if (match === null || !/^outv\d+h$/.test(link.ifname) || processAlive(Number(match[1]))) continue;
    ignoreFailure(() => execFileSync('ip', ['link', 'del', link.ifname], { stdio: 'ignore' }));
    ignoreFailure(() => execFileSync('ip', ['netns', 'del', match[2]!], { stdio: 'ignore' }));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let exitCleanupInstalled = false;

// 'exit' handlers must be synchronous, hence execFileSync in removeSync.
function installExitCleanup(): void {
  if (exitCleanupInstalled) return;
  exitCleanupInstalled = true;
  process.on('exit', () => {
    for (const remove of live.values()) remove();
    live.clear();
  });
}

function ignoreFailure(action: () => void): void {
  try {
    action();
  } catch {
    // Already gone: removal is idempotent.
  }
}

/** Runs a command; resolves with its stdout, rejects with its stderr when it fails. */
export function runCommand(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: options.env ? { ...options.env } : process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const out = Buffer.concat(stdout).toString('utf8');
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(' ')} exited ${code ?? signal}: ${Buffer.concat(stderr).toString('utf8').trim() || out.trim()}`));
    });
    if (child.stdin !== null) {
      // A child may exit without reading its input.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}
