// Typed settings read from the environment, once, at start-up. Each command
// (server, agent, job, CLI) declares its settings as a table; the same table
// checks the values, fills defaults, and is what docs/configuration.md lists.
// Aliases (the Scalr agent's SCALR_* names) are accepted after the canonical name.

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

/**
 * Two or more settings that must agree, each valid alone (a lease timeout
 * shorter than three heartbeats, say). Checked after every value parsed, so
 * a command refuses to start instead of failing jobs later.
 */
export interface SettingsRule<V> {
  /** The canonical names of the settings involved, for the reference. */
  readonly settings: readonly string[];
  /** The rule in words, for the reference. */
  readonly description: string;
  /**
   * A sentence naming every setting involved, with its value, when they
   * contradict each other; undefined when they agree. `explicit` holds the
   * keys whose values came from the environment rather than a default.
   */
  readonly check: (values: V, explicit: ReadonlySet<string>) => string | undefined;
}

export function loadSettings<S extends Record<string, Setting<unknown>>>(
  specs: S,
  env: Env,
  rules: readonly SettingsRule<SettingsOf<S>>[] = [],
): SettingsOf<S> {
  const explicit = new Set<string>();
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const found = spec.env.find((name) => env[name] !== undefined && env[name] !== '');
    if (found !== undefined) explicit.add(key);
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
  for (const rule of rules) {
    const problem = rule.check(values as SettingsOf<S>, explicit);
    if (problem !== undefined) problems.push(problem);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values as SettingsOf<S>;
}

/** Renders the rules as a Markdown list for docs/configuration.md. */
export function describeRules(rules: readonly SettingsRule<never>[]): string {
  return rules.map((rule) => `- ${rule.settings.map((name) => `\`${name}\``).join(' and ')}: ${rule.description}`).join('\n');
}

/** A duration as a person would write it in a setting: `90s`, `5m`, `1.5h`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * A command's settings, or undefined after writing `<command>: invalid
 * configuration: …` to stderr; the command then exits with its usage code
 * (2). Any other error is not about settings and is thrown.
 */
export function loadOrReport<T>(command: string, load: () => T, stderr: NodeJS.WritableStream = process.stderr): T | undefined {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    stderr.write(`${command}: ${error.message}\n`);
    return undefined;
  }
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

/** A duration from `minMs` to `maxMs`, said in the units the user wrote. */
export function asDurationWithin(minMs: number, maxMs: number): (raw: string) => number {
  return (raw) => {
    const value = asDurationMs(raw);
    if (value < minMs || value > maxMs) throw new Error(`expected a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}`);
    return value;
  };
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
