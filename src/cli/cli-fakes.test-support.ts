// Fakes for driving the CLI in unit tests: a terminal that records what was
// written, an API whose every method is scripted by the test (and records
// its calls), and the process hooks. Nothing here opens a socket.
import { PassThrough, Writable } from 'node:stream';
import type { OutpostApi } from './api-client.ts';
import type { Run } from './api-resources.ts';

type RunAttributes = Run['attributes'];
import type { CliDeps, ProcessCommands } from './command-context.ts';
import type { Terminal } from './output.ts';

export interface RecordingTerminal extends Terminal {
  /** Write into it what the user "types". */
  readonly stdin: PassThrough & { readonly isTTY: boolean };
  readonly stdoutText: () => string;
  readonly stderrText: () => string;
}

export function recordingTerminal(options: { stdinIsTty?: boolean; stdoutIsTty?: boolean } = {}): RecordingTerminal {
  const out: string[] = [];
  const err: string[] = [];
  // Real Writable streams, because readline (the confirmation prompt) listens on its output.
  const recorder = (into: string[], isTTY: boolean): Writable =>
    Object.assign(
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          into.push(chunk.toString('utf8'));
          done();
        },
      }),
      { isTTY },
    );
  const stdin = Object.assign(new PassThrough(), { isTTY: options.stdinIsTty ?? false });
  return {
    stdin,
    stdout: recorder(out, options.stdoutIsTty ?? false),
    stderr: recorder(err, false),
    stdoutText: () => out.join(''),
    stderrText: () => err.join(''),
  };
}

export type ApiCall = readonly [method: string, ...args: unknown[]];

/**
 * An OutpostApi whose methods are the given handlers; calling any other
 * method fails the test with a clear message. Every call is recorded.
 */
export function scriptedApi(handlers: Partial<Record<keyof OutpostApi, (...args: never[]) => unknown>>): { api: OutpostApi; calls: ApiCall[] } {
  const calls: ApiCall[] = [];
  const api = new Proxy({} as OutpostApi, {
    get(_target, property) {
      if (property === 'then') return undefined;
      return (...args: unknown[]) => {
        calls.push([String(property), ...args]);
        const handler = handlers[property as keyof OutpostApi] as ((...a: unknown[]) => unknown) | undefined;
        if (handler === undefined) return Promise.reject(new Error(`unexpected API call: ${String(property)}`));
        return Promise.resolve(handler(...args));
      };
    },
  });
  return { api, calls };
}

export interface FakeProcess {
  readonly deps: CliDeps;
  readonly terminal: RecordingTerminal;
  /** The Ctrl-C listeners currently registered. */
  readonly interruptListeners: Set<() => void>;
  readonly exitCodes: number[];
  readonly processCalls: string[];
}

export function fakeProcess(api: OutpostApi, terminal: RecordingTerminal = recordingTerminal()): FakeProcess {
  const interruptListeners = new Set<() => void>();
  const exitCodes: number[] = [];
  const processCalls: string[] = [];
  const processCommand = (name: keyof ProcessCommands) => async () => {
    processCalls.push(name);
    return 0;
  };
  const deps: CliDeps = {
    terminal,
    env: { OUTPOST_TOKEN: 'opa_test_token_0123456789' },
    createApi: () => api,
    onInterrupt: (listener) => {
      interruptListeners.add(listener);
      return () => interruptListeners.delete(listener);
    },
    exit: (code) => {
      exitCodes.push(code);
    },
    processes: {
      server: processCommand('server'),
      agent: processCommand('agent'),
      job: processCommand('job'),
      quickstart: processCommand('quickstart'),
      launcher: processCommand('launcher'),
      engineBuild: processCommand('engineBuild'),
    },
  };
  return { deps, terminal, interruptListeners, exitCodes, processCalls };
}

export function fakeRun(status: RunAttributes['status'], overrides: Partial<RunAttributes> = {}): Run {
  return {
    id: 'run-1',
    type: 'runs',
    attributes: {
      status,
      message: 'test',
      'is-destroy': false,
      'plan-only': false,
      'auto-apply': false,
      'has-changes': true,
      'resource-additions': 1,
      'resource-changes': 0,
      'resource-destructions': 0,
      'error-message': null,
      'created-at': '2025-01-01T00:00:00Z',
      'status-timestamps': {},
      ...overrides,
    },
    relationships: {
      workspace: { data: { type: 'workspaces', id: 'ws-1' } },
      plan: { data: { type: 'plans', id: 'plan-1' } },
      apply: { data: { type: 'applies', id: 'apply-1' } },
    },
  };
}
