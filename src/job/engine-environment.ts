// The engine's environment, built explicitly: what the operation inherited,
// minus Outpost's own variables (they hold tokens the engine must not see),
// plus the workspace's variables, plus the settings that point the engine's
// http state backend at the control plane. The job token reaches the engine
// only here, never through a file, so it does not land on disk.
import type { Env } from '../config/settings.ts';
import { agentPaths, type JobVariable } from '../protocol/agent-api.ts';
import { OutpostError } from '../protocol/errors.ts';

export interface EngineEnvironmentInput {
  readonly inherited: Env;
  readonly serverUrl: string;
  readonly token: string;
  /** The CLI configuration file Outpost writes (see working-directory.ts). */
  readonly cliConfigFile: string;
  readonly variables: readonly JobVariable[];
}

export interface EngineEnvironment {
  readonly env: Record<string, string>;
  /** Workspace variables that Outpost's own settings replaced, to say so in the log. */
  readonly overridden: readonly string[];
}

/** Prefixes of variables that carry Outpost (and Scalr-compatible) credentials. */
const withheldPrefixes = ['OUTPOST_', 'SCALR_'];
/** The operation's own Node settings: a Node program the configuration runs must not share its compile cache. */
const withheldNames = new Set(['NODE_COMPILE_CACHE']);

export function buildEngineEnvironment(input: EngineEnvironmentInput): EngineEnvironment {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.inherited)) {
    if (value === undefined) continue;
    const upper = name.toUpperCase();
    if (withheldPrefixes.some((prefix) => upper.startsWith(prefix)) || withheldNames.has(upper)) continue;
    env[name] = value;
  }
  const fromWorkspace = new Set<string>();
  for (const variable of input.variables) {
    const name = variable.category === 'terraform' ? `TF_VAR_${variable.key}` : variable.key;
    checkVariable(variable, name);
    env[name] = variable.value;
    fromWorkspace.add(name);
  }
  // Ours come last and win: a workspace variable must not redirect the state
  // backend (state would silently go elsewhere) or make the engine prompt.
  const outpost = outpostVariables(input);
  const overridden = Object.keys(outpost).filter((name) => fromWorkspace.has(name));
  return { env: { ...env, ...outpost }, overridden };
}

function outpostVariables(input: EngineEnvironmentInput): Record<string, string> {
  const lockAddress = `${input.serverUrl}${agentPaths.jobStateLock}`;
  return {
    TF_HTTP_ADDRESS: `${input.serverUrl}${agentPaths.jobState}`,
    TF_HTTP_LOCK_ADDRESS: lockAddress,
    TF_HTTP_UNLOCK_ADDRESS: lockAddress,
    TF_HTTP_LOCK_METHOD: 'POST',
    TF_HTTP_UNLOCK_METHOD: 'DELETE',
    // The http backend sends these as Basic credentials; the control plane
    // accepts the job token as the password of user "job".
    TF_HTTP_USERNAME: 'job',
    TF_HTTP_PASSWORD: input.token,
    // The backend retries connection failures, 429 and 5xx; its default (2
    // retries, about 3 s) would lose the state save of an apply that ends
    // while the control plane restarts. 1, 2, 4, 8 s, then every 10 s:
    // about 10 minutes, the job operation's own budget (control-plane-transport.ts).
    TF_HTTP_RETRY_MAX: '64',
    TF_HTTP_RETRY_WAIT_MIN: '1',
    TF_HTTP_RETRY_WAIT_MAX: '10',
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    TF_CLI_CONFIG_FILE: input.cliConfigFile,
  };
}

function checkVariable(variable: JobVariable, name: string): void {
  const problem =
    variable.key === '' ? 'its name is empty'
    : /[=\0]/.test(name) ? 'its name contains "=" or a NUL byte'
    : variable.value.includes('\0') ? 'its value contains a NUL byte'
    : undefined;
  if (problem !== undefined) {
    throw new OutpostError('validation_failed', `variable ${JSON.stringify(variable.key)} cannot be passed to the engine: ${problem}`);
  }
}
