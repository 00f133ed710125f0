// The CLI's settings: which server, which token, which organization. Read
// from the environment once (the only place in src/cli that looks at
// process.env); a flag given on the command line wins over its variable.
// docs/cli.md lists this table.
import { asUrl, loadSettings, type Env, type Setting } from '../config/settings.ts';
import { UsageError } from './exit-codes.ts';

function asOrganizationName(raw: string): string {
  const name = raw.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) throw new Error('expected letters, digits, - or _');
  return name;
}

function asToken(raw: string): string {
  const token = raw.trim();
  if (token === '' || /\s/.test(token)) throw new Error('expected a token without spaces');
  return token;
}

export const cliSettings = {
  url: {
    env: ['OUTPOST_URL'],
    default: 'http://127.0.0.1:8480',
    description: 'URL of the Outpost server the CLI talks to. Flag: `--url`.',
    parse: asUrl,
  },
  token: {
    env: ['OUTPOST_TOKEN'],
    description: 'API token (`opa_…`) for every API command. Flag: `--token` (visible to other local users in the process list; prefer the variable).',
    parse: asToken,
    secret: true,
  },
  org: {
    env: ['OUTPOST_ORG'],
    default: 'default',
    description: 'Organization the commands act in. Flag: `--org`.',
    parse: asOrganizationName,
  },
} as const satisfies Record<string, Setting<unknown>>;

/** The global flags, as commander parsed them (each may be absent). */
export interface ApiFlags {
  readonly url?: string | undefined;
  readonly token?: string | undefined;
  readonly org?: string | undefined;
}

export interface ApiSettings {
  readonly url: string;
  readonly token: string;
  readonly org: string;
}

const flagNames: Readonly<Record<keyof ApiFlags, string>> = { url: '--url', token: '--token', org: '--org' };

export function resolveApiSettings(flags: ApiFlags, env: Env = process.env): ApiSettings {
  const fromEnv = loadSettings(cliSettings, env);
  const fromFlags: Partial<Record<keyof ApiFlags, string>> = {};
  for (const key of Object.keys(flagNames) as (keyof ApiFlags)[]) {
    const raw = flags[key];
    if (raw === undefined) continue;
    try {
      fromFlags[key] = cliSettings[key].parse(raw);
    } catch (error) {
      const shown = key === 'token' ? '(hidden)' : JSON.stringify(raw);
      throw new UsageError(`${flagNames[key]} ${shown}: ${(error as Error).message}`);
    }
  }
  const token = fromFlags.token ?? fromEnv.token;
  if (token === undefined) {
    throw new UsageError(
      'no API token: set OUTPOST_TOKEN (or pass --token). The server prints its admin token when it first starts.',
    );
  }
  return { url: fromFlags.url ?? fromEnv.url, token, org: fromFlags.org ?? fromEnv.org };
}
