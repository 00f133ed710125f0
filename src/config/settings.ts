// Typed settings read from the environment, once, at start-up. Each command
// (server, agent, job, CLI) declares its settings as a table; the same table
// checks the values, fills defaults, and is what docs/configuration.md lists.
// Aliases (the seed's SCALR_* names) are accepted after the canonical name.

export type Env = Readonly<Record<string, string | undefined>>;

export interface Setting<T> {
  /** Canonical name first, then accepted aliases in order of precedence. */
  readonly env: readonly string[];
  readonly description: string;
  /** Default as the user would write it; undefined means "unset is allowed". */
  readonly default?: string;
  readonly parse: (raw: string) => T;
  /** Never echo the value back in errors or logs. */
  readonly secret?: boolean;
}

export type SettingsOf<S extends Record<string, Setting<unknown>>> = {
  [K in keyof S]: S[K] extends Setting<infer T> ? (S[K] extends { default: string } ? T : T | undefined) : never;
};

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function loadSettings<S extends Record<string, Setting<unknown>>>(specs: S, env: Env): SettingsOf<S> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const found = spec.env.find((name) => env[name] !== undefined && env[name] !== '');
    const raw = found === undefined ? spec.default : env[found];
    if (raw === undefined) {
      values[key] = undefined;
      continue;
    }
    try {
      values[key] = spec.parse(raw);
    } catch (error) {
      const shown = spec.secret ? '(hidden)' : JSON.stringify(raw);
      const source = found ?? `${spec.env[0]} (default)`;
      problems.push(`${source}=${shown}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values as SettingsOf<S>;
}

// Parsers: each throws an Error whose message says what was expected.

export const asString = (raw: string): string => raw;

export function asInt(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
      throw new Error(`expected a whole number from ${min} to ${max}`);
    }
    return value;
  };
}

export function asBool(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new Error('expected true or false');
}

export function asEnum<T extends string>(choices: readonly T[]): (raw: string) => T {
  return (raw) => {
    const value = raw.trim().toLowerCase() as T;
    if (!choices.includes(value)) throw new Error(`expected one of ${choices.join(', ')}`);
    return value;
  };
}

export function asUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('expected an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('expected an http or https URL');
  return raw.replace(/\/+$/, '');
}

/** Durations: "500ms", "30s", "5m", "1h", or a bare number of seconds. */
export function asDurationMs(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!match) throw new Error('expected a duration such as 500ms, 30s, 5m or 1h');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] ?? 1000;
  return Math.round(Number(match[1]) * unit);
}

/** Renders a settings table as Markdown rows for docs/configuration.md. */
export function describeSettings(specs: Record<string, Setting<unknown>>): string {
  const rows = Object.values(specs).map((spec) => {
    const [name, ...aliases] = spec.env;
    const aliasText = aliases.length > 0 ? `<br>aliases: ${aliases.map((a) => `\`${a}\``).join(', ')}` : '';
    const defaultText = spec.default === undefined ? '—' : `\`${spec.default}\``;
    return `| \`${name}\`${aliasText} | ${defaultText} | ${spec.description} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
